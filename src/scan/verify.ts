import { isLoopbackHost } from '../config/schema.js';
import { canonicalSecret, hashSecret } from './fingerprint.js';
import { forEachLimit } from './pool.js';
import type { ScanFinding, Verification } from './types.js';

/**
 * The live check of found Mistral keys: `GET {base}/v1/models` with the key, which any valid key
 * may call and which costs nothing. 200 means `live`, 401 or 403 `revoked` (or never valid);
 * anything else, a timeout or a network error is `unknown`. Each distinct key is sent once,
 * only to the configured base URL, never along a redirect, and never printed.
 */

/** Options of `verifyFindings`. */
export interface VerifyOptions {
  /** API origin, such as `https://api.mistral.ai` (no `/v1`). */
  baseUrl: string;
  /** Requests in flight at most; default 4, gentle on the API's rate limit. */
  concurrency?: number;
  /** Per-request timeout; default 5000 ms. */
  timeoutMs?: number;
}

/** The rule whose findings can be checked live. */
export const VERIFIABLE_RULE = 'mistral_api_key';

/**
 * Throws a TypeError unless `baseUrl` is an https URL, or http to a loopback host: a found key
 * must not cross a network in clear text.
 */
export function checkVerifyBaseUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError(
      'the verify base URL must be an absolute URL such as https://api.mistral.ai',
    );
  }
  const plainLoopback = url.protocol === 'http:' && isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !plainLoopback) {
    throw new TypeError('the verify base URL must use https:// (http:// only for loopback)');
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new TypeError('the verify base URL must not carry credentials, a query or a fragment');
  }
  return baseUrl.replace(/\/+$/, '');
}

/** Holds found Mistral keys between the scan and their live check. */
export interface KeyCollector {
  /** The session's `onValue`: keeps the value of each Mistral key finding. */
  collect(finding: ScanFinding, raw: string): void;
  verify(findings: ScanFinding[], options: VerifyOptions): Promise<number>;
}

/**
 * Collects the Mistral keys of a scan as it runs (pass `collect` as the session's `onValue`),
 * then checks them. Keys are held in memory only until `verify` returns.
 *
 * @example
 * const keys = createKeyCollector();
 * const findings = await scanTree(options, { ...session, onValue: keys.collect });
 * await keys.verify(findings, { baseUrl: 'https://api.mistral.ai' });
 */
export function createKeyCollector(): KeyCollector {
  const keyOf = new WeakMap<ScanFinding, string>();
  const values = new Map<string, string>();
  return {
    collect(finding: ScanFinding, raw: string): void {
      if (finding.rule !== VERIFIABLE_RULE) return;
      const value = canonicalSecret(raw);
      const hash = hashSecret(raw);
      values.set(hash, value);
      keyOf.set(finding, hash);
    },
    /**
     * Sets `verification` on the Mistral key findings among `findings`, checking each distinct
     * key once; returns how many keys were checked. Every collected key is dropped afterwards.
     */
    async verify(findings: ScanFinding[], options: VerifyOptions): Promise<number> {
      const base = checkVerifyBaseUrl(options.baseUrl);
      const hashes = [...new Set(findings.map((f) => keyOf.get(f)).filter((h) => h !== undefined))];
      const results = new Map<string, Verification>();
      try {
        await forEachLimit(hashes, options.concurrency ?? 4, async (hash) => {
          results.set(hash, await checkKey(base, values.get(hash)!, options.timeoutMs ?? 5000));
        });
      } finally {
        values.clear();
      }
      for (const f of findings) {
        const hash = keyOf.get(f);
        if (hash) f.verification = results.get(hash) ?? 'unknown';
      }
      return hashes.length;
    },
  };
}

async function checkKey(base: string, key: string, timeoutMs: number): Promise<Verification> {
  try {
    const response = await fetch(`${base}/v1/models`, {
      headers: { authorization: `Bearer ${key}`, accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel();
    if (response.status === 200) return 'live';
    if (response.status === 401 || response.status === 403) return 'revoked';
    return 'unknown';
  } catch {
    // The error may name the URL and never the key; it is dropped all the same, as the
    // outcome is the same for every failure.
    return 'unknown';
  }
}
