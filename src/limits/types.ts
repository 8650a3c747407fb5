/**
 * Limits as data, and the contract every limit store implements. The limiter (`limiter.ts`)
 * owns policy: which limits apply to a key, what to do when the store is unreachable, what the
 * caller is told. A store owns state only: it counts, checks and applies atomically.
 */

/** The limits one virtual key is held to, resolved from the key and its profile. */
export type LimitName = 'concurrency' | 'rpm' | 'tpm' | 'dailyTokens' | 'monthlyTokens';

/** Every limit a caller can hit, including the per-IP limit on failed authentications. */
export type LimitKind = LimitName | 'authFailures';

/**
 * What a limit does while its store is unreachable: `allow` lets requests through uncounted,
 * `refuse` turns them away. Budgets default to `refuse` (an outage must not become free
 * spending); request rates and concurrency to `allow`.
 */
export type OutagePolicy = 'allow' | 'refuse';

/**
 * Resolved limits for one key; 0 means no limit. Plain numbers rather than optional fields so
 * that both backends read them without branching on undefined on every request.
 */
export interface ResolvedLimits {
  rpm: number;
  tpm: number;
  concurrency: number;
  dailyTokens: number;
  monthlyTokens: number;
}

/**
 * The clock-derived window identities of one check, computed once by the limiter so that both
 * backends (and every replica's script call) agree on them.
 */
export interface WindowPoint {
  /** Milliseconds since the epoch. */
  now: number;
  /** Index of the current per-minute window: `floor(now / windowMs)`. */
  minute: number;
  /** Milliseconds elapsed in the current per-minute window. */
  elapsed: number;
  /** UTC day number since the epoch. */
  day: number;
  /** UTC month number: `year * 12 + month`. */
  month: number;
}

/**
 * The counters of one key as a store sees them at one instant (after the check, and after the
 * reservation when it was taken). Sliding-window figures are the two raw buckets; the limiter
 * turns them into estimates, remaining amounts and retry delays.
 */
export interface KeyCounters {
  /** Bit set of the limits that refused (see `LIMIT_BITS`); 0 when the reservation was taken. */
  refused: number;
  requestsPrev: number;
  requestsCurr: number;
  tokensPrev: number;
  tokensCurr: number;
  tokensDay: number;
  tokensMonth: number;
  inFlight: number;
}

/** Bits of `KeyCounters.refused`, one per limit; the Redis script uses the same values. */
export const LIMIT_BITS: Readonly<Record<LimitName, number>> = {
  concurrency: 1,
  rpm: 2,
  tpm: 4,
  dailyTokens: 8,
  monthlyTokens: 16,
};

/** Every per-key limit, in the order they are checked and reported. */
export const LIMIT_NAMES: readonly LimitName[] = [
  'concurrency',
  'rpm',
  'tpm',
  'dailyTokens',
  'monthlyTokens',
];

/** What a store needs to take a reservation. */
export interface ReserveRequest {
  keyId: string;
  /** Tokens to hold: the prompt estimate plus `max_tokens`. */
  tokens: number;
  limits: ResolvedLimits;
  /** Unique per reservation; names the concurrency slot so it can be released exactly once. */
  leaseId: string;
  at: WindowPoint;
}

/** What a store needs to settle a reservation it took. */
export interface SettleRequest {
  keyId: string;
  leaseId: string;
  /** Real usage minus the reserved amount; negative gives tokens back. */
  delta: number;
  /** The windows the reservation was counted in: the difference goes back to those. */
  minute: number;
  day: number;
  month: number;
}

/** The two buckets of a per-IP sliding window. */
export interface BucketCounters {
  prev: number;
  curr: number;
}

/**
 * Where limit state lives. `MemoryLimitStore` (one process) and `RedisLimitStore` (shared by
 * replicas) implement it and swap freely. Every method either completes atomically or rejects
 * with a `LimitStoreUnavailableError`; it never half-applies a reservation.
 */
export interface LimitStore {
  /** `memory` or `redis`, for logs and metrics. */
  readonly kind: string;
  /** Checks every limit and, only when all pass, counts the request and takes a slot. */
  reserve(request: ReserveRequest): Promise<KeyCounters>;
  /** Frees the concurrency slot and moves the token difference into the original windows. */
  settle(request: SettleRequest): Promise<void>;
  /** Adds `cost` to a per-IP sliding window (0 only reads it) and returns its buckets. */
  hit(bucket: string, cost: number, at: WindowPoint): Promise<BucketCounters>;
  /** Reads a key's counters without changing them. */
  read(keyId: string, at: WindowPoint): Promise<KeyCounters>;
  /** False while the store cannot answer (Redis disconnected); always true in memory. */
  healthy(): boolean;
  /** Releases connections the store opened itself. */
  close(): Promise<void>;
}

/** Raised by a store that cannot reach its state; the limiter applies the outage policy. */
export class LimitStoreUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('The limit store is unavailable.', options);
    this.name = 'LimitStoreUnavailableError';
  }
}
