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
  abort?: AbortController;
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
  readonly #pending = new Map<AbortController, number>();
  #timer: NodeJS.Timeout | null = null;

  add(controller: AbortController, timeoutMs: number): void {
    this.#pending.set(controller, Date.now() + timeoutMs);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#sweep(), Math.min(1000, timeoutMs));
      this.#timer.unref();
    }
  }

  delete(controller: AbortController): void {
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

/**
 * The one connection pool to the Mistral API. The origin is fixed at start-up: nothing a client
 * sends can change where the gateway connects, and redirects are never followed.
 */
export class Upstream {
  readonly #pool: Pool;
  readonly #options: UpstreamOptions;
  readonly #basePath: string;
  readonly #deadlines = new Deadlines();

  constructor(options: UpstreamOptions) {
    const url = new URL(options.baseUrl);
    this.#options = options;
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
    const abort = req.abort ?? new AbortController();
    this.#deadlines.add(abort, this.#options.totalTimeoutMs);
    let res: UpstreamResponse;
    try {
      res = (await this.#pool.request({
        method: req.method as Dispatcher.HttpMethod,
        path: this.#basePath + req.path,
        headers: req.headers,
        body: req.body ?? null,
        signal: abort.signal,
      })) as UpstreamResponse;
    } catch (error) {
      this.#deadlines.delete(abort);
      throw upstreamFailure(abort.signal.aborted ? abort.signal.reason : error);
    }
    res.body.once('close', () => this.#deadlines.delete(abort));
    return res;
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
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
