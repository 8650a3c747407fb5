import { request } from 'undici';
import type { Secret } from '../config/secret.js';

/** What Mistral said about a key. */
export interface VerifyResult {
  /** `valid`: 2xx; `invalid`: 401 or 403; `unreachable`: no answer, or any other status. */
  result: 'valid' | 'invalid' | 'unreachable';
  /** The HTTP status, when there was an answer. */
  status?: number;
}

/** Options of `verifyKey`. */
export interface VerifyOptions {
  /** Longest wait for the whole answer; default 5000. */
  timeoutMs?: number;
}

/**
 * Asks Mistral whether a key is accepted, with `GET {baseUrl}/v1/models`: the cheapest
 * authenticated call, which spends no tokens. Never throws; never puts the key anywhere but the
 * Authorization header.
 *
 * @example
 * const { result, status } = await verifyKey('https://api.mistral.ai', key, { timeoutMs: 3000 });
 * // { result: 'invalid', status: 401 }
 */
export async function verifyKey(
  baseUrl: string,
  key: Secret,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  try {
    const res = await request(`${baseUrl.replace(/\/+$/, '')}/v1/models`, {
      method: 'GET',
      headers: { authorization: `Bearer ${key.reveal()}`, accept: 'application/json' },
      signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    });
    await res.body.dump();
    const status = res.statusCode;
    if (status >= 200 && status < 300) return { result: 'valid', status };
    if (status === 401 || status === 403) return { result: 'invalid', status };
    return { result: 'unreachable', status };
  } catch {
    return { result: 'unreachable' };
  }
}
