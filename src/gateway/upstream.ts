import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { type Dispatcher, Pool, errors as undiciErrors } from 'undici';
import { GuardError } from '../errors.js';

export interface UpstreamOptions {
  baseUrl: string;
  connectTimeoutMs: number;
  /** Longest wait for the response headers. */
  firstByteTimeoutMs: number;
  /** Longest silence between two body chunks (a stalled stream). */
  idleTimeoutMs: number;
  /** Longest a whole exchange may take, stream included. */
  totalTimeoutMs: number;
  connections: number;
  /** Retries of a connection error, 502 or 503, while nothing has reached the client yet. */
  retries?: number;
  /** Consecutive failures that open the circuit breaker; 0 turns it off. */
  breakerThreshold?: number;
  /** How long an open breaker fails fast before one probe may pass. */
  breakerCooldownMs?: number;
}

export interface UpstreamRequest {
  method: string;
  /** Path and query, always built by the gateway from its own route table. */
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer | Readable | null;
  /**
   * Aborts the exchange, e.g. when the client goes away. The total timeout aborts it too, so
   * the caller learns of both through one signal.
   */
  abort?: Cancellation;
}

/**
 * Cancels one upstream exchange: the signal undici is given, in the shape it accepts besides
 * AbortSignal (an EventEmitter with `aborted` and `reason`). An AbortController costs about
 * 5 µs per request on Node 20, most of it building the EventTarget behind its signal; this
 * costs next to nothing, and the gateway makes one for every request.
 */
export class Cancellation extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  /** Aborts once; later calls keep the first reason. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
}

export type UpstreamResponse = Dispatcher.ResponseData;

/** The reason a deadline abort carries, so the failure maps to 504 rather than 502. */
class TotalTimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * Enforces the total timeout of every exchange with one timer for all of them. A timer and an
 * `AbortSignal.any` per request cost about 27 µs on Node 20, as much as the rest of the
 * gateway's own work on a 2 KB chat; a sweep once a second costs nothing per request and is
 * precise enough for a limit counted in minutes.
 */
class Deadlines {
  readonly #pending = new Map<Cancellation, number>();
  #timer: NodeJS.Timeout | null = null;

  add(controller: Cancellation, timeoutMs: number): void {
    this.#pending.set(controller, Date.now() + timeoutMs);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#sweep(), Math.min(1000, timeoutMs));
      this.#timer.unref();
    }
  }

  delete(controller: Cancellation): void {
    this.#pending.delete(controller);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [controller, deadline] of this.#pending) {
      if (deadline > now) continue;
      this.#pending.delete(controller);
      controller.abort(new TotalTimeoutError('total upstream timeout'));
    }
    if (this.#pending.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }
}

/** The circuit breaker's state, as `/readyz` shows it. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * A circuit breaker: after `threshold` failures in a row the upstream is presumed down and calls
 * fail at once (503 with Retry-After) for `cooldownMs`; then one probe call passes, and its
 * outcome closes the breaker or opens it again.
 */
class Breaker {
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
  ) {}

  get state(): BreakerState {
    return this.#state;
  }

  /**
   * Throws when a call may not go now; otherwise admits it. Returns true when the call is the
   * probe of a half-open breaker, whose outcome decides the breaker's state.
   */
  admit(): boolean {
    if (this.threshold === 0 || this.#state === 'closed') return false;
    const waited = Date.now() - this.#openedAt;
    if (this.#state === 'open' && waited >= this.cooldownMs) {
      this.#state = 'half-open';
      this.#probing = false;
    }
    if (this.#state === 'half-open' && !this.#probing) {
      this.#probing = true;
      return true;
    }
    const retryAfter = Math.max(1, Math.ceil((this.cooldownMs - waited) / 1000));
    throw new GuardError('upstream_unavailable', {
      headers: { 'retry-after': String(retryAfter) },
    });
  }

  success(): void {
    this.#failures = 0;
    this.#state = 'closed';
    this.#probing = false;
  }

  /**
   * A probe that ended with no verdict (its client left): the next call probes instead, so the
   * breaker cannot stay half-open with no probe in flight.
   */
  abandon(probe: boolean): void {
    if (probe && this.#state === 'half-open') this.#probing = false;
  }

  failure(): void {
    if (this.threshold === 0) return;
    this.#failures++;
    if (this.#state === 'half-open' || this.#failures >= this.threshold) {
      this.#state = 'open';
      this.#openedAt = Date.now();
      this.#probing = false;
    }
  }
}

/** A connection that failed before any answer: safe to try again on another connection. */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'UND_ERR_SOCKET' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_CLOSED'
  );
}

/** Seconds of a numeric `Retry-After`, or null. */
function retryAfterMs(headers: Record<string, string | string[] | undefined>): number | null {
  const value = headers['retry-after'];
  if (typeof value !== 'string' || !/^\d{1,6}$/.test(value)) return null;
  return Number(value) * 1000;
}

/** The longest a retry waits, even when the upstream asks for more. */
const MAX_RETRY_WAIT_MS = 5_000;

/**
 * The one connection pool to the Mistral API. The origin is fixed at start-up: nothing a client
 * sends can change where the gateway connects, and redirects are never followed.
 */
export class Upstream {
  readonly #pool: Pool;
  readonly #options: UpstreamOptions;
  readonly #basePath: string;
  readonly #deadlines = new Deadlines();
  readonly #breaker: Breaker;

  constructor(options: UpstreamOptions) {
    const url = new URL(options.baseUrl);
    this.#options = options;
    this.#breaker = new Breaker(options.breakerThreshold ?? 5, options.breakerCooldownMs ?? 10_000);
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.#pool = new Pool(url.origin, {
      connections: options.connections,
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.firstByteTimeoutMs,
      bodyTimeout: options.idleTimeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  /**
   * Sends one request; throws GuardError (502/504) for transport failures. The total timeout
   * runs until the answer's body is consumed or destroyed.
   */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const probe = this.#breaker.admit();
    const abort = req.abort ?? new Cancellation();
    this.#deadlines.add(abort, this.#options.totalTimeoutMs);
    // A streamed body is gone once sent, so only a body held in memory may be sent again.
    const replayable =
      req.body === undefined ||
      req.body === null ||
      typeof req.body === 'string' ||
      Buffer.isBuffer(req.body);
    const retries = replayable ? (this.#options.retries ?? 2) : 0;
    for (let attempt = 0; ; attempt++) {
      let res: UpstreamResponse;
      try {
        res = (await this.#pool.request({
          method: req.method as Dispatcher.HttpMethod,
          path: this.#basePath + req.path,
          headers: req.headers,
          body: req.body ?? null,
          signal: abort,
        })) as UpstreamResponse;
      } catch (error) {
        if (!abort.aborted) {
          if (attempt < retries && isConnectionError(error)) {
            await this.#wait(backoffMs(attempt), abort, probe);
            continue;
          }
          this.#breaker.failure();
        } else if (abort.reason instanceof TotalTimeoutError) {
          // The upstream took longer than the whole exchange may: a failure of the upstream.
          this.#breaker.failure();
        } else {
          this.#breaker.abandon(probe);
        }
        this.#deadlines.delete(abort);
        throw upstreamFailure(abort.aborted ? abort.reason : error);
      }
      const status = res.statusCode;
      if ((status === 502 || status === 503) && attempt < retries) {
        const wait = retryAfterMs(res.headers) ?? backoffMs(attempt);
        if (wait <= MAX_RETRY_WAIT_MS) {
          res.body.resume();
          await this.#wait(wait, abort, probe);
          continue;
        }
      }
      // One outcome per call, retries included, so one bad request counts once.
      if (status >= 500) this.#breaker.failure();
      else this.#breaker.success();
      res.body.once('close', () => this.#deadlines.delete(abort));
      return res;
    }
  }

  /** The circuit breaker's state, for `/readyz`. */
  get breaker(): BreakerState {
    return this.#breaker.state;
  }

  /** Waits before a retry; the client leaving or the deadline ends the wait (and the call). */
  async #wait(ms: number, abort: Cancellation, probe: boolean): Promise<void> {
    const aborted = await new Promise<boolean>((resolve) => {
      if (abort.aborted) return resolve(true);
      const onAbort = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        abort.off('abort', onAbort);
        resolve(false);
      }, ms);
      abort.once('abort', onAbort);
    });
    if (aborted) {
      this.#breaker.abandon(probe);
      this.#deadlines.delete(abort);
      throw upstreamFailure(abort.reason);
    }
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
}

/** Exponential backoff with full jitter: up to 100 ms, 200 ms, 400 ms... */
function backoffMs(attempt: number): number {
  return Math.round(Math.random() * 100 * 2 ** attempt);
}

/**
 * Maps a transport failure to what the client may see: 504 for timeouts, 502 otherwise. The
 * cause (which names the upstream host) goes to the log only.
 */
export function upstreamFailure(error: unknown): GuardError {
  if (error instanceof GuardError) return error;
  const code = (error as { code?: string })?.code;
  const timedOut =
    error instanceof undiciErrors.ConnectTimeoutError ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    (error as Error)?.name === 'TimeoutError';
  return new GuardError(timedOut ? 'upstream_timeout' : 'upstream_error', { cause: error });
}
