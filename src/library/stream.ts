import { GuardError, isGuardError } from '../errors.js';
import { applyUsage, type RequestContext } from '../gateway/context.js';
import type { StreamGuard } from '../gateway/guard.js';
import { createSseParser, formatSseEvent, SSE_DONE, type SseParser } from '../mistral/sse.js';
import type { GuardRuntime } from './runtime.js';

/** True when an answer is an event stream. */
export function isEventStream(response: Response): boolean {
  return response.headers.get('content-type')?.startsWith('text/event-stream') ?? false;
}

/**
 * Guards a streamed answer as the gateway relays one: each event's data goes through the
 * gateway's `StreamGuard` (per-choice redaction, a value split across events caught, nothing of
 * a redacted value released early), usage is read where it appears, and the audit event is
 * written before `[DONE]` is released. The stream is pulled, so nothing is read from the
 * upstream faster than the caller consumes it.
 *
 * A blocked answer, a stream cut before `[DONE]` or an event the guard cannot read ends the
 * stream with the GuardError, which the SDK's event iterator throws to its caller as it is. A
 * caller that stops reading early (breaking out of its loop) is recorded as `client_closed`.
 */
export function guardEventStream(
  runtime: GuardRuntime,
  ctx: RequestContext,
  response: Response,
): Response {
  const relay = new GuardedRelay(runtime, ctx, response.body!.getReader());
  const body = new ReadableStream<Uint8Array>({
    pull: (controller) => relay.pull(controller),
    cancel: (reason) => relay.cancel(reason),
  });
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

const encoder = new TextEncoder();

/** One guarded stream: reads upstream events on demand and hands on their guarded text. */
class GuardedRelay {
  readonly #runtime: GuardRuntime;
  readonly #ctx: RequestContext;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #parser: SseParser = createSseParser();
  readonly #decoder = new TextDecoder();
  readonly #guard: StreamGuard | null;
  #over = false;

  constructor(
    runtime: GuardRuntime,
    ctx: RequestContext,
    reader: ReadableStreamDefaultReader<Uint8Array>,
  ) {
    this.#runtime = runtime;
    this.#ctx = ctx;
    this.#reader = reader;
    this.#guard = runtime.streamGuard(ctx);
  }

  async pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    const out: string[] = [];
    let done: boolean;
    try {
      done = await this.#next(out);
    } catch (error) {
      const failure = isGuardError(error)
        ? error
        : new GuardError('upstream_error', { cause: error });
      controller.error((await this.#end(failure)) ?? failure);
      await this.#reader.cancel().catch(() => {});
      return;
    }
    controller.enqueue(encoder.encode(out.join('')));
    if (!done) return;
    controller.close();
    await this.#reader.cancel().catch(() => {});
  }

  // TODO: a stream the caller drops without reading it to the end or cancelling it keeps its
  // concurrency slot and token reservation until the process exits (the memory store has no
  // lease expiry). Settling from a FinalizationRegistry on the relay, or an idle timeout between
  // pulls, would end that; settled when a test drops an unread stream, forces a collection, and
  // a call under `concurrency: 1` then passes.
  async cancel(reason: unknown): Promise<void> {
    await this.#end(new GuardError('client_closed', { cause: reason }));
    await this.#reader.cancel(reason).catch(() => {});
  }

  /** Reads until at least one event is ready; true once the stream is over. */
  async #next(out: string[]): Promise<boolean> {
    while (out.length === 0) {
      const chunk = await this.#reader.read();
      if (chunk.done) {
        throw new GuardError('upstream_error', { cause: new Error('stream ended without [DONE]') });
      }
      for (const event of this.#parser.push(this.#decoder.decode(chunk.value, { stream: true }))) {
        if (event.data === SSE_DONE) {
          for (const data of this.#guard?.finish() ?? []) out.push(formatSseEvent({ data }));
          await this.#end();
          out.push(formatSseEvent(event));
          // Whatever the upstream sends after its terminator is not part of the answer.
          return true;
        }
        if (event.data.includes('"usage"')) {
          try {
            applyUsage(this.#ctx, (JSON.parse(event.data) as { usage?: unknown }).usage);
          } catch {
            // Not JSON: the guard below refuses it, or the SDK reports it to its caller.
          }
        }
        const data = this.#guard ? this.#guard.event(event.data) : event.data;
        out.push(formatSseEvent({ ...event, data }));
      }
    }
    return false;
  }

  /**
   * Records the outcome once and gives back what the call held. Without an error the answer
   * was complete; with one, returns the error the caller should see.
   */
  async #end(error?: unknown): Promise<GuardError | null> {
    if (this.#over) return null;
    this.#over = true;
    try {
      if (error === undefined) {
        await this.#runtime.finish(this.#ctx, 200);
        return null;
      }
      return await this.#runtime.fail(this.#ctx, error);
    } finally {
      this.#runtime.settle(this.#ctx);
    }
  }
}
