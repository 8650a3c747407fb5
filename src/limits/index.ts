/**
 * The limits engine: per-key request, token, concurrency and budget limits, per-address
 * failed-authentication limits, in memory or in Redis.
 */

export { authBucket } from './address.js';
export {
  type AuthLimitResult,
  errorFor,
  headersFor,
  LIMIT_CODES,
  type LimitAllowed,
  type LimitRefused,
  type LimitResult,
  type RateFigures,
  type Reservation,
} from './decision.js';
export {
  createLimiter,
  type KeyUsage,
  type Limiter,
  type LimiterOptions,
  type LimiterStats,
  type LimitSubject,
} from './limiter.js';
export { MemoryLimitStore } from './memory-store.js';
export { RedisLimitStore, type RedisLimitStoreOptions } from './redis-store.js';
export {
  type LimitKind,
  type LimitName,
  type LimitStore,
  LimitStoreUnavailableError,
  type OutagePolicy,
  type ResolvedLimits,
} from './types.js';
