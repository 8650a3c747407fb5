import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { GuardError } from '../errors.js';
import { createSseParser, formatSseEvent } from '../mistral/sse.js';
import { replaceOwnKeys } from './caller-text.js';
import { applyUsage, type RequestContext } from './context.js';
import { relayedHeaders } from './headers.js';
import { Cancellation, type UpstreamResponse, upstreamFailure } from './upstream.js';

/** The most a buffered (non-streamed) upstream answer may weigh. */
const MAX_UPSTREAM_BODY = 64 * 1024 * 1024;

/** An upstream answer read whole, ready to be sent on. */
export interface BufferedAnswer {
  status: number;
  headers: Record<string, string>;
  json: unknown;
}

/**
 * Collects an upstream body with plain listeners, capped: an async iterator costs a promise per
 * chunk, measurable at gateway rates.
 */
function readAll(res: UpstreamResponse): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_UPSTREAM_BODY) {
        res.body.destroy();
        reject(new GuardError('upstream_error', { cause: new Error('upstream body too large') }));
        return;
      }
      chunks.push(chunk);
    });
    res.body.once('end', () =>
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)),
    );
    res.body.once('error', reject);
  });
}

/**
 * Reads a non-streamed upstream answer and decides what the client sees. 2xx and 4xx keep their
 * meaning; a 401 means the gateway's own key failed; 5xx, redirects and unparsable bodies become
 * a generic 502 or 504 so nothing of the upstream's internals reaches the caller.
 */
export async function readUpstreamJson(
  res: UpstreamResponse,
  ctx: RequestContext,
  ownKeys: readonly string[] = [],
): Promise<BufferedAnswer> {
  ctx.upstreamStatus = res.statusCode;
  let raw: Buffer;
  try {
    raw = await readAll(res);
  } catch (error) {
    throw upstreamFailure(error);
  }
  const headers = relayedHeaders(res.headers);
  const status = res.statusCode;
  if (status === 401) {
    throw new GuardError('upstream_auth_failed', { cause: new Error('upstream answered 401') });
  }
  if (status >= 500 || status < 200 || (status >= 300 && status < 400)) {
    const code = status === 504 ? 'upstream_timeout' : 'upstream_error';
    throw new GuardError(code, { cause: new Error(`upstream answered ${status}`) });
  }
  if (status >= 400) {
    const json = upstreamErrorBody(raw.toString('utf8'), ctx.requestId, ownKeys);
    return { status, headers, json };
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (cause) {
    throw new GuardError('upstream_error', { cause });
  }
  applyUsage(ctx, (json as { usage?: unknown })?.usage);
  return { status, headers, json };
}

/**
 * An abort controller for the upstream call that fires when the client goes away before its
 * answer is complete, with a reason that records the request as `client_closed`, not as an
 * upstream failure.
 */
export function abortOnClientClose(reply: FastifyReply): Cancellation {
  const abort = new Cancellation();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort(new GuardError('client_closed'));
  });
  return abort;
}

const MAX_UPSTREAM_MESSAGE = 2000;

/**
 * What the upstream's own internals look like in an error text: a stack frame, a source file
 * path, a URL, a host and port. Such a text is replaced by a generic one.
 */
const UPSTREAM_INTERNALS =
  /\n\s*at\s|\bat\s[\w$.<>]+\s\(|(?:\/[\w.-]+)+\.(?:[cm]?[jt]s|py|go|java|rb|php|rs|cs)\b|[A-Za-z]:\\[\w.-]|\bhttps?:\/\/|\b[\w-]+(?:\.[\w-]+)+:\d{2,5}\b/;

/**
 * The error body a client gets for an upstream 4xx: Mistral's fields, read leniently and rebuilt
 * (nothing else the upstream sent is passed on), with the gateway's request id.
 */
export function upstreamErrorBody(
  raw: string,
  requestId: string,
  ownKeys: readonly string[] = [],
): Record<string, unknown> {
  let parsed: Record<string, unknown> = {};
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      parsed = value as Record<string, unknown>;
    }
  } catch {
    // Not JSON: the generic message below stands.
  }
  // An upstream that quotes the key it was sent must not hand it to the caller: the gateway's
  // keys are replaced before anything is cut, so no cut can leave part of one. A text that shows
  // the upstream's internals (a stack, a file, an address) is not passed on at all.
  const text = (v: string, max: number) =>
    UPSTREAM_INTERNALS.test(v) ? null : replaceOwnKeys(v, ownKeys).slice(0, max);
  const scalar = (v: unknown) =>
    typeof v === 'string' ? text(v, 200) : typeof v === 'number' ? v : null;
  let message: unknown = parsed.message ?? parsed.detail;
  if (typeof message !== 'string') {
    message = message === undefined ? undefined : JSON.stringify(message);
  }
  return {
    object: 'error',
    message:
      (typeof message === 'string' && message.length > 0
        ? text(message, MAX_UPSTREAM_MESSAGE)
        : null) ?? 'The upstream API refused the request.',
    type:
      (typeof parsed.type === 'string' ? text(parsed.type, 100) : null) ?? 'invalid_request_error',
    param: scalar(parsed.param),
    code: scalar(parsed.code),
    request_id: requestId,
  };
}

/** True when the upstream answered with an event stream. */
export function isEventStream(res: UpstreamResponse): boolean {
  const type = res.headers['content-type'];
  return typeof type === 'string' && type.startsWith('text/event-stream');
}

function write(out: ServerResponse, text: string): Promise<void> | null {
  if (out.write(text)) return null;
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done).off('close', done);
      resolve();
    };
    out.on('drain', done).on('close', done);
  });
}

export interface StreamRelayHooks {
  /** Rewrites an event's data before it is sent (the content guard); may throw to end the stream. */
  transform?(data: string): string;
  /** Rewrites an error object the upstream sent inside the stream (its texts redacted). */
  redactError?(error: Record<string, unknown>): void;
  /** Extra events to send before `[DONE]`: text a transform still held back. */
  flush?(): string[];
  /** Runs before the final `[DONE]` event is released: the audit event is written here. */
  beforeDone(): Promise<void>;
}

/**
 * Relays an SSE answer event by event, never holding more than one event. Usage is read from
 * the chunk that carries it. The `[DONE]` terminator is released only after `beforeDone`, so a
 * client that saw a complete stream has an audit event, whatever happens next.
 * Resolves when the stream is over; throws GuardError when it ended badly (after the status line
 * was sent, so the error is also told in-band as an SSE error event).
 */
export async function relayEventStream(
  res: UpstreamResponse,
  out: ServerResponse,
  ctx: RequestContext,
  hooks: StreamRelayHooks,
  ownKeys: readonly string[] = [],
): Promise<void> {
  ctx.upstreamStatus = res.statusCode;
  out.writeHead(200, {
    ...relayedHeaders(res.headers),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    ...ctx.limitHeaders,
    'x-request-id': ctx.requestId,
  });
  const parser = createSseParser();
  const decoder = new TextDecoder();
  let done = false;
  try {
    reading: for await (const chunk of res.body) {
      for (const event of parser.push(decoder.decode(chunk as Buffer, { stream: true }))) {
        if (event.data === '[DONE]') {
          for (const data of hooks.flush?.() ?? []) await write(out, formatSseEvent({ data }));
          done = true;
          await hooks.beforeDone();
          await write(out, formatSseEvent(event));
          // Whatever the upstream sends after its terminator is not part of the answer.
          break reading;
        }
        if (event.data.includes('"usage"')) {
          try {
            applyUsage(ctx, (JSON.parse(event.data) as { usage?: unknown }).usage);
          } catch {
            // A chunk that is not JSON is relayed as is; the SDK will report it to the caller.
          }
        }
        let own = ownKeys.length > 0 ? withoutOwnKeys(event.data, ownKeys) : event.data;
        if (hooks.redactError && (event.event === 'error' || own.includes('"error"'))) {
          own = redactedErrorEvent(own, hooks.redactError);
        }
        const data = hooks.transform ? hooks.transform(own) : own;
        const pending = write(out, formatSseEvent({ ...event, data }));
        if (pending) await pending;
        if (out.destroyed) throw new GuardError('client_closed');
      }
    }
  } catch (error) {
    if (out.destroyed) throw new GuardError('client_closed', { cause: error });
    throw streamBroken(out, ctx, upstreamFailure(error));
  }
  if (!done)
    throw streamBroken(
      out,
      ctx,
      new GuardError('upstream_error', { cause: new Error('stream ended without [DONE]') }),
    );
}

/**
 * An event's data with the gateway's own keys replaced, should the upstream echo one, written
 * plainly or with JSON escapes (`\u0041`), which are undone first.
 *
 * Missing: a key spread over several events (a few characters in each delta) is not caught;
 * each event is looked at alone, so such a key reaches the client in pieces.
 */
function withoutOwnKeys(data: string, ownKeys: readonly string[]): string {
  if (ownKeys.some((key) => data.includes(key))) return replaceOwnKeys(data, ownKeys, true);
  if (!data.includes('\\u')) return data;
  let normal: string;
  try {
    normal = JSON.stringify(JSON.parse(data));
  } catch {
    return data;
  }
  return ownKeys.some((key) => normal.includes(key)) ? replaceOwnKeys(normal, ownKeys, true) : data;
}

/**
 * An error the upstream sent as an event (`{"object":"error",...}` or `{"error":{...}}`), with
 * its texts redacted like an error answer's. Other events are returned as they came.
 */
function redactedErrorEvent(
  data: string,
  redact: (error: Record<string, unknown>) => void,
): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return data;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return data;
  const event = parsed as Record<string, unknown>;
  const nested = event.error;
  if (typeof nested === 'object' && nested !== null && !Array.isArray(nested)) {
    redact(nested as Record<string, unknown>);
  } else if (event.object === 'error') {
    redact(event);
  } else {
    return data;
  }
  return JSON.stringify(event);
}

function streamBroken(out: ServerResponse, ctx: RequestContext, error: GuardError): GuardError {
  if (!out.destroyed) {
    const body = {
      object: 'error',
      message: error.message,
      type: error.type,
      param: null,
      code: error.code,
      request_id: ctx.requestId,
    };
    out.write(formatSseEvent({ data: JSON.stringify(body) }));
  }
  return error;
}
