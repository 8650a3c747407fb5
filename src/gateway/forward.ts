import type { Secret } from '../config/secret.js';
import { GuardError } from '../errors.js';
import type { RequestContext } from './context.js';
import type { Upstream, UpstreamRequest, UpstreamResponse } from './upstream.js';

/** Where the gateway gets the upstream key of an environment, on every request. */
export interface UpstreamKeys {
  /** The key in use; synchronous and without I/O. Throws a GuardError when there is none. */
  current(environment: string): Secret;
  /**
   * Called when the upstream answered 401 to `keyUsed`: the key to try once more (the previous
   * key, during a rotation's grace window), or null.
   */
  onUnauthorized(environment: string, keyUsed: Secret): Secret | null;
  /** Every key held now (current and in a grace window), to keep them out of recorded text. */
  held(): Secret[];
  /** Per environment, whether its key is usable, for `/readyz`; never the key. */
  status?(): Record<
    string,
    {
      ok: boolean;
      lastError?: { code: string } | null;
      ageDays?: number | null;
      verified?: { result: string } | null;
      warnings?: string[];
    }
  >;
}

/** The upstream keys the gateway holds, as text, to keep them out of what it passes on. */
export function heldKeys(keys: UpstreamKeys): string[] {
  return keys.held().map((key) => key.reveal());
}

/** Upstream keys fixed at start, as `loadConfig` found them in the environment. */
export function staticUpstreamKeys(keys: Record<string, Secret>): UpstreamKeys {
  return {
    current(environment) {
      const key = keys[environment];
      if (!key) throw new GuardError('upstream_auth_failed');
      return key;
    },
    onUnauthorized: () => null,
    held: () => Object.values(keys),
    status: () =>
      Object.fromEntries(Object.entries(keys).map(([env]) => [env, { ok: true, lastError: null }])),
  };
}

/**
 * Sends a request upstream with the environment's key. When the upstream refuses that key
 * (401) and a rotation left an older key in its grace window, the request is sent once more
 * with it, if its body can be sent again.
 */
export async function forward(
  upstream: Upstream,
  keys: UpstreamKeys,
  ctx: RequestContext,
  build: (key: string) => UpstreamRequest,
  replayable = true,
): Promise<UpstreamResponse> {
  const environment = ctx.environment!;
  const key = keys.current(environment);
  const res = await upstream.request(build(key.reveal()));
  if (res.statusCode !== 401) return res;
  const next = keys.onUnauthorized(environment, key);
  if (!next || !replayable) return res;
  res.body.resume();
  return upstream.request(build(next.reveal()));
}
