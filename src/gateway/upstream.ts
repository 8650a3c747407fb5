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
  /** Aborts the exchange, e.g. when the client goes away. */
  signal?: AbortSignal;
}

export type UpstreamResponse = Dispatcher.ResponseData;

/**
 * The one connection pool to the Mistral API. The origin is fixed at start-up: nothing a client
 * sends can change where the gateway connects, and redirects are never followed.
 */
export class Upstream {
  readonly #pool: Pool;
  readonly #options: UpstreamOptions;
  readonly #basePath: string;

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

  /** Sends one request; throws GuardError (502/504) for transport failures. */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const total = AbortSignal.timeout(this.#options.totalTimeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, total]) : total;
    try {
      return (await this.#pool.request({
        method: req.method as Dispatcher.HttpMethod,
        path: this.#basePath + req.path,
        headers: req.headers,
        body: req.body ?? null,
        signal,
      })) as UpstreamResponse;
    } catch (error) {
      throw upstreamFailure(error, total.aborted);
    }
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
}

/**
 * Maps a transport failure to what the client may see: 504 for timeouts, 502 otherwise. The
 * cause (which names the upstream host) goes to the log only.
 */
export function upstreamFailure(error: unknown, totalTimedOut = false): GuardError {
  if (error instanceof GuardError) return error;
  const code = (error as { code?: string })?.code;
  const timedOut =
    totalTimedOut ||
    error instanceof undiciErrors.ConnectTimeoutError ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    (error as Error)?.name === 'TimeoutError';
  return new GuardError(timedOut ? 'upstream_timeout' : 'upstream_error', { cause: error });
}
