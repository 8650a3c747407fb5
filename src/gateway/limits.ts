import type { Config } from '../config/load.js';
import { GuardError, isGuardError } from '../errors.js';
import {
  createLimiter,
  errorFor,
  headersFor,
  type Limiter,
  type LimitStore,
  MemoryLimitStore,
  type OutagePolicy,
  RedisLimitStore,
  type Reservation,
} from '../limits/index.js';
import type { Logger } from '../logging.js';
import type { RequestContext } from './context.js';

/**
 * The gateway's use of the limits engine: one store (memory or Redis), one limiter per
 * environment so each profile's outage rule applies to its keys, and the per-address limit on
 * failed authentications.
 */
export interface GatewayLimits {
  /**
   * Runs an authentication `attempt` under the per-address limit of failed authentications:
   * refused (429) while the address is over it; a failure (a 401 GuardError) is counted; a
   * success is checked against the address again, because the guesses of a concurrent burst all
   * pass the first check before any of them is counted, and a right one among them must not pass
   * once the others took the address over the limit. Without a failure from the address in the
   * last minute, the second check is a map lookup.
   */
  authenticate<T>(address: string, attempt: () => T | Promise<T>): Promise<T>;
  /**
   * Holds a request slot and `tokens` for the authenticated key, or throws its 429. The rate
   * headers go on `ctx.limitHeaders`; the reservation is kept on `ctx` for `settle`.
   */
  reserve(ctx: RequestContext, tokens: number): Promise<void>;
  /** Settles the request's reservation with what it really used; safe to call more than once. */
  settle(ctx: RequestContext): void;
  /** False while the shared store cannot answer. */
  healthy(): boolean;
  /** `memory` or `redis`. */
  readonly backend: string;
  close(): Promise<void>;
}

/** Creates the limits of a gateway from its configuration; the Redis store connects lazily. */
export function createGatewayLimits(
  config: Config,
  logger: Logger,
  store: LimitStore = openStore(config),
): GatewayLimits {
  const limiters = new Map<string, Limiter>();
  for (const env of config.environments) {
    const onOutage: OutagePolicy = config.profiles[env]!.limits.onOutage;
    limiters.set(
      env,
      createLimiter({
        store,
        authFailuresPerMinute: 0,
        outage: {
          concurrency: onOutage,
          rpm: onOutage,
          tpm: onOutage,
          dailyTokens: onOutage,
          monthlyTokens: onOutage,
        },
      }),
    );
  }
  const addresses = createLimiter({
    store,
    authFailuresPerMinute: config.limits.authFailuresPerMinute,
  });
  let wasHealthy = true;
  const watch = () => {
    const now = store.healthy();
    if (now !== wasHealthy) {
      wasHealthy = now;
      if (now) logger.info({ backend: store.kind }, 'limit store reachable again');
      else logger.error({ backend: store.kind }, 'limit store unreachable; outage rules apply');
    }
  };

  async function checkAddress(address: string): Promise<void> {
    const result = await addresses.checkAuth(address);
    if (!result.allowed) throw errorFor(result);
  }

  return {
    backend: store.kind,
    async authenticate(address, attempt) {
      if (config.limits.authFailuresPerMinute === 0) return attempt();
      await checkAddress(address);
      let result: Awaited<ReturnType<typeof attempt>>;
      try {
        result = await attempt();
      } catch (error) {
        if (isGuardError(error) && error.status === 401) {
          await addresses.recordAuthFailure(address);
        }
        throw error;
      }
      await checkAddress(address);
      return result;
    },
    async reserve(ctx, tokens) {
      const limiter = limiters.get(ctx.environment!);
      const policy = ctx.policy!;
      if (!limiter) throw new GuardError('environment_not_allowed');
      const result = await limiter.reserve(
        { id: ctx.keyId!, environment: ctx.environment!, limits: policy.limits },
        Math.max(0, Math.ceil(tokens)),
      );
      watch();
      ctx.limitHeaders = headersFor(result);
      if (!result.allowed) throw errorFor(result);
      ctx.reservation = { limiter, reservation: result.reservation };
    },
    settle(ctx) {
      const held = ctx.reservation;
      if (!held) return;
      ctx.reservation = null;
      void held.limiter.settle(held.reservation, actualTokens(ctx, held.reservation));
    },
    healthy: () => store.healthy(),
    async close() {
      await store.close();
    },
  };
}

/**
 * What a request really used: the upstream's usage when it reported one; nothing when the
 * upstream was never reached or refused; otherwise (a stream the client left, an answer without
 * usage) unknown, and the reservation stays counted.
 */
function actualTokens(ctx: RequestContext, reservation: Reservation): number | undefined {
  if (ctx.totalTokens !== null) return ctx.totalTokens;
  if (ctx.upstreamStatus === null || ctx.upstreamStatus >= 400) return 0;
  return reservation.tokens > 0 ? undefined : 0;
}

function openStore(config: Config): LimitStore {
  const url = config.limits.redisUrl;
  if (!url) return new MemoryLimitStore();
  return new RedisLimitStore({ url: url.reveal(), prefix: config.limits.prefix });
}

/**
 * A token estimate for text the gateway has not tokenised: about four characters a token for
 * the languages Mistral models serve most, rounded up.
 */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}
