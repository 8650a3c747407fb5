import { type Readable, Transform } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GuardError } from '../errors.js';
import { refuseEncodedBody } from './body.js';
import { refuseSecretIn, refuseSecretInQuery } from './caller-text.js';
import { MAX_PATH, type RequestContext } from './context.js';
import { forward, heldKeys } from './forward.js';
import { redactErrorMessage } from './guard.js';
import { relayedHeaders, upstreamHeaders } from './headers.js';
import { abortOnClientClose, upstreamErrorBody } from './relay.js';
import { type HandlerDeps, record } from './server.js';

type Finish = (status: number, body: unknown, headers?: Record<string, string>) => Promise<unknown>;

// Path segments that could walk out of the allowed prefix once a server normalises them.
const UNSAFE_PATH = /(^|\/)\.\.?(\/|$|;)|%2e|%2f|%5c|%3b|;|\\|\/\//i;

/**
 * Passes a streamed request body on while counting it: a chunked upload (no Content-Length)
 * past the profile's limit fails the upstream call with 413 instead of being forwarded whole.
 */
function capped(body: Readable, limit: number): Readable {
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > limit) {
        done(new GuardError('body_too_large', { headers: { connection: 'close' } }));
        return;
      }
      done(null, chunk);
    },
  });
  body.on('error', (error) => counter.destroy(error));
  return body.pipe(counter);
}

/** True when the caller's profile lists this path as a pass-through prefix. */
export function passThroughAllowed(ctx: RequestContext): boolean {
  const prefixes = ctx.policy?.passThrough ?? [];
  if (!prefixes.length || UNSAFE_PATH.test(ctx.path)) return false;
  return prefixes.some((p) => ctx.path === p || ctx.path.startsWith(p.endsWith('/') ? p : `${p}/`));
}

/**
 * Forwards a request the profile lets through without content inspection: authenticated and
 * audited, body and answer streamed, the real key swapped in and headers filtered both ways.
 */
export async function handlePassThrough(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: HandlerDeps,
  finish: Finish,
): Promise<unknown> {
  const ctx = request.ctx;
  ctx.action = 'passthrough';
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > ctx.policy!.maxBodyBytes) {
    throw new GuardError('body_too_large', { headers: { connection: 'close' } });
  }
  const hasBody = ctx.method !== 'GET' && ctx.method !== 'DELETE';
  if (hasBody) refuseEncodedBody(request.headers);
  const contentType = request.headers['content-type'];
  // The context keeps a path cut for the audit trail; the upstream gets the whole one.
  const queryAt = request.url.indexOf('?');
  const path = queryAt === -1 ? request.url : request.url.slice(0, queryAt);
  const query = queryAt === -1 ? '' : request.url.slice(queryAt);
  // The checks above read the path as the context keeps it, cut at MAX_PATH: a longer one is
  // refused rather than forwarded unchecked.
  if (path.length > MAX_PATH) {
    throw new GuardError('invalid_request', { message: 'The path is too long.', param: 'path' });
  }
  // The path and query go upstream as written: a key or personal data in them is refused.
  const own = heldKeys(deps.upstreamKeys);
  refuseSecretIn(path, 'path', own);
  refuseSecretInQuery(query, own);
  const abort = abortOnClientClose(reply);
  const res = await forward(
    deps.upstream,
    deps.upstreamKeys,
    ctx,
    (key) => ({
      method: ctx.method,
      path: path + query,
      headers: upstreamHeaders(request.headers, key, ctx.requestId, contentType, own),
      body: hasBody ? capped(request.raw, ctx.policy!.maxBodyBytes) : null,
      abort,
    }),
    !hasBody,
  );
  ctx.upstreamStatus = res.statusCode;
  if (res.statusCode >= 500) {
    res.body.resume();
    throw new GuardError(res.statusCode === 504 ? 'upstream_timeout' : 'upstream_error');
  }
  if (res.statusCode === 401) {
    res.body.resume();
    throw new GuardError('upstream_auth_failed');
  }
  if (res.statusCode >= 400 && res.statusCode < 500) {
    // Error bodies are rebuilt, never relayed: they could carry upstream internals.
    const raw = await res.body.text().catch(() => '');
    const body = upstreamErrorBody(raw, ctx.requestId, own);
    redactErrorMessage(deps.guards.get(ctx.environment!), body);
    return finish(res.statusCode, body, relayedHeaders(res.headers));
  }
  ctx.status = res.statusCode;
  await record(ctx, deps);
  return reply
    .code(res.statusCode)
    .headers({ ...relayedHeaders(res.headers), ...ctx.limitHeaders, 'x-request-id': ctx.requestId })
    .send(res.body);
}
