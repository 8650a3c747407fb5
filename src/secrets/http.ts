import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { UpstreamKeyError, type UpstreamKeyErrorCode } from './errors.js';

/** A secret manager's answer. Bodies are small JSON documents; anything larger is refused. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One request to a secret manager. */
export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** Names the service in error messages, e.g. `AWS Secrets Manager`. */
  service: string;
}

const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * Sends one request and reads the whole answer. Redirects are not followed: a secret manager
 * that redirects is misconfigured, and following would hand our credentials to another host.
 * A transport failure becomes `source_unavailable`, named by its code only.
 */
export async function send(url: string, req: HttpRequest): Promise<HttpAnswer> {
  try {
    const res = await request(url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      signal: AbortSignal.timeout(req.timeoutMs),
    });
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) {
        res.body.destroy();
        throw new UpstreamKeyError('source_failed', `${req.service} sent an oversized answer`);
      }
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    return { status: res.statusCode, headers: res.headers, text };
  } catch (error) {
    if (error instanceof UpstreamKeyError) throw error;
    // A timeout's DOMException has a numeric code; its name says more.
    const { code, name } = error as { code?: unknown; name?: string };
    const reason = typeof code === 'string' ? code : (name ?? 'error');
    throw new UpstreamKeyError('source_unavailable', `${req.service} did not answer (${reason})`, {
      cause: error,
    });
  }
}

/** The failure an HTTP status stands for, when the service has nothing more precise. */
export function codeForStatus(status: number): UpstreamKeyErrorCode {
  if (status === 401 || status === 403) return 'source_auth_failed';
  if (status === 404) return 'source_not_found';
  if (status === 429) return 'source_throttled';
  if (status >= 500) return 'source_unavailable';
  return 'source_failed';
}

/** A failed answer as an error naming the service, the status and an optional service code. */
export function failure(
  code: UpstreamKeyErrorCode,
  service: string,
  status: number,
  detail?: string,
): UpstreamKeyError {
  const what: Partial<Record<UpstreamKeyErrorCode, string>> = {
    source_auth_failed: 'refused our credentials',
    source_not_found: 'has no such secret',
    source_throttled: 'asked us to slow down',
    source_unavailable: 'failed',
  };
  const reason = what[code] ?? 'refused the request';
  return new UpstreamKeyError(
    code,
    `${service} ${reason} (${status}${detail ? ` ${detail}` : ''})`,
  );
}

/** Parses a JSON answer; a service that answers something else is failing. */
export function jsonOf(answer: HttpAnswer, service: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(answer.text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // Reported below, without the parser's message (it quotes the text).
  }
  throw new UpstreamKeyError('source_failed', `${service} answered ${answer.status} without JSON`);
}

/** How a source retries a throttled or failing service. */
export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The wait before the second attempt; doubled for each later one, with jitter. */
  delayMs: number;
}

/** Three attempts, a quarter second apart at first: a throttled read usually passes by then. */
export const DEFAULT_RETRY: RetryOptions = { attempts: 3, delayMs: 250 };

/**
 * Runs `attempt` again when it fails with throttling or unavailability, which often pass within
 * a second; every other failure (credentials, a missing secret) is final at once.
 */
export async function withRetries<T>(retry: RetryOptions, attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      const transient =
        error instanceof UpstreamKeyError &&
        (error.code === 'source_throttled' || error.code === 'source_unavailable');
      if (!transient || n >= retry.attempts) throw error;
      const base = retry.delayMs * 2 ** (n - 1);
      await sleep(base / 2 + Math.random() * base);
    }
  }
}
