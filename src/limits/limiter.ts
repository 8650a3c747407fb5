import { randomBytes } from 'node:crypto';
import type { KeyLimits } from '../keys/types.js';
import { authBucket } from './address.js';
import {
  type AuthLimitResult,
  figuresOf,
  LIMIT_CODES,
  type LimitResult,
  type Reservation,
  refusal,
  unavailable,
} from './decision.js';
import { MemoryLimitStore } from './memory-store.js';
import {
  type KeyCounters,
  LIMIT_NAMES,
  type LimitKind,
  type LimitStore,
  LimitStoreUnavailableError,
  type OutagePolicy,
  type ResolvedLimits,
  type SettleRequest,
  type WindowPoint,
} from './types.js';
import { slidingEstimate, slidingRetryMs, toRetrySeconds, windowPoint } from './window.js';

/** The key fields the limiter reads; a `VirtualKeyRecord` fits. */
export interface LimitSubject {
  id: string;
  /** Names the profile whose limits are the key's defaults. */
  environment: string;
  /** The key's own limits; each one set replaces its profile's default. */
  limits: KeyLimits | null;
}

/** Options of `createLimiter`, checked when it is called. */
export interface LimiterOptions {
  /** Where state lives. Default: a new `MemoryLimitStore` (one process). */
  store?: LimitStore;
  /** Default limits per environment (profile); a key's own limits override them one by one. */
  defaults?: Record<string, KeyLimits>;
  /** Failed authentications allowed per client address per minute; 0 disables. Default 20. */
  authFailuresPerMinute?: number;
  /**
   * Per limit, what happens while the store is unreachable. Default: `refuse` for
   * `dailyTokens` and `monthlyTokens`, `allow` for the rest.
   */
  outage?: Partial<Record<LimitKind, OutagePolicy>>;
  /** The clock, in epoch milliseconds; tests pass a fake one. Default `Date.now`. */
  now?: () => number;
}

/** Counters of decisions taken without the store, for metrics. */
export interface LimiterStats {
  /** Requests let through uncounted because the store was unreachable. */
  failOpen: number;
  /** Requests refused because the store was unreachable. */
  failClosed: number;
  /** Settlements that could not be written when first tried. */
  settleFailures: number;
  /** Failed settlements waiting to be replayed once the store answers again. */
  pendingSettlements: number;
}

/** A key's use of its limits now; a limit of 0 means the key has none, remaining is then null. */
export interface KeyUsage {
  keyId: string;
  /** ISO 8601, UTC. */
  at: string;
  limits: ResolvedLimits;
  requestsMinute: number;
  tokensMinute: number;
  inFlight: number;
  tokensDay: number;
  tokensMonth: number;
  remaining: {
    requestsMinute: number | null;
    tokensMinute: number | null;
    concurrency: number | null;
    tokensDay: number | null;
    tokensMonth: number | null;
  };
}

/**
 * The limits engine: per-key request, token, concurrency and budget limits, and per-address
 * failed-authentication limits.
 *
 * Lifecycle of a request: `reserve(key, estimate)` before forwarding (the estimate is the
 * prompt's token estimate plus `max_tokens`); then, in a `finally`, `settle(reservation,
 * actual)` when the answer is complete, the stream ends or the client leaves.
 */
export interface Limiter {
  /** Checks every limit of the key and, when all pass, holds `tokens` and a concurrency slot. */
  reserve(key: LimitSubject, tokens: number): Promise<LimitResult>;
  /**
   * Releases the slot and replaces the held tokens by `actualTokens`. Without `actualTokens`
   * (usage unknown, e.g. the client left mid-stream) the reserved amount stays counted. Never
   * throws; settling twice does nothing.
   */
  settle(reservation: Reservation, actualTokens?: number): Promise<void>;
  /** Before authentication: refused when the address already has too many failures. */
  checkAuth(address: string): Promise<AuthLimitResult>;
  /** After a failed authentication: counts it, and says whether the address is now blocked. */
  recordAuthFailure(address: string): Promise<AuthLimitResult>;
  /** The key's counters now. Rejects with `LimitStoreUnavailableError` when the store is away. */
  usage(key: LimitSubject): Promise<KeyUsage>;
  /** False while the store cannot answer; for `/readyz`. */
  healthy(): boolean;
  /** Decisions taken without the store since start. */
  stats(): LimiterStats;
  /** Closes the store. */
  close(): Promise<void>;
}

const DEFAULT_OUTAGE: Record<LimitKind, OutagePolicy> = {
  concurrency: 'allow',
  rpm: 'allow',
  tpm: 'allow',
  dailyTokens: 'refuse',
  monthlyTokens: 'refuse',
  authFailures: 'allow',
};

/**
 * Failed settlements kept for replay. Past this many (a long outage under heavy traffic) the
 * newest are dropped: their slots then free when their leases end, their tokens stay counted.
 */
const MAX_PENDING_SETTLEMENTS = 10_000;

/** How long a clean per-address read is trusted. */
const CLEAN_TTL_MS = 1000;
/** Addresses remembered as clean at most; the memory is dropped whole past it. */
const MAX_CLEAN_ADDRESSES = 10_000;

const NO_LIMITS: ResolvedLimits = {
  rpm: 0,
  tpm: 0,
  concurrency: 0,
  dailyTokens: 0,
  monthlyTokens: 0,
};

class HeldReservation implements Reservation {
  settled = false;
  constructor(
    readonly keyId: string,
    readonly tokens: number,
    readonly degraded: boolean,
    readonly leaseId: string,
    readonly at: WindowPoint | null,
  ) {}
}

function checkCount(value: unknown, where: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`createLimiter: ${where} must be a non-negative integer`);
  }
  return value;
}

function resolve(own: KeyLimits | null, base: ResolvedLimits): ResolvedLimits {
  if (!own) return base;
  return {
    rpm: own.rpm ?? base.rpm,
    tpm: own.tpm ?? base.tpm,
    concurrency: own.concurrency ?? base.concurrency,
    dailyTokens: own.dailyTokens ?? base.dailyTokens,
    monthlyTokens: own.monthlyTokens ?? base.monthlyTokens,
  };
}

/** A lease id unique across replicas: a random per-process prefix and a counter. */
function leaseIds(): () => string {
  const prefix = randomBytes(6).toString('base64url');
  let seq = 0;
  return () => `${prefix}.${(seq++).toString(36)}`;
}

/**
 * Creates the limits engine. Options are checked at once: a misconfiguration throws here, not
 * on the first request.
 *
 * @example
 * const limiter = createLimiter({ defaults: { production: { rpm: 60, monthlyTokens: 5e6 } } });
 * const result = await limiter.reserve(key, promptEstimate + maxTokens);
 * if (!result.allowed) throw errorFor(result);
 * try { ... } finally { await limiter.settle(result.reservation, usage?.total_tokens); }
 */
export function createLimiter(options: LimiterOptions = {}): Limiter {
  const store = options.store ?? new MemoryLimitStore();
  for (const method of ['reserve', 'settle', 'hit', 'read', 'healthy', 'close'] as const) {
    if (typeof store[method] !== 'function') {
      throw new TypeError(`createLimiter: the store has no ${method}() method`);
    }
  }
  const now = options.now ?? Date.now;
  const authLimit = checkCount(options.authFailuresPerMinute ?? 20, 'authFailuresPerMinute');
  const outage = { ...DEFAULT_OUTAGE, ...options.outage };
  for (const [name, policy] of Object.entries(outage)) {
    if (!(name in DEFAULT_OUTAGE) || (policy !== 'allow' && policy !== 'refuse')) {
      throw new TypeError(`createLimiter: outage.${name} must be 'allow' or 'refuse'`);
    }
  }
  const defaults = new Map<string, ResolvedLimits>();
  for (const [env, limits] of Object.entries(options.defaults ?? {})) {
    const resolved = { ...NO_LIMITS };
    for (const name of LIMIT_NAMES) resolved[name] = checkCount(limits[name], `${env}.${name}`);
    defaults.set(env, resolved);
  }
  const nextLease = leaseIds();
  // Addresses whose bucket held no failure at all when last read, until when that answer is
  // trusted. A failure seen here drops the entry at once; one recorded by another replica is
  // seen at the next read, so an address that starts failing elsewhere can pass one check per
  // CLEAN_TTL_MS. What it saves is a store round trip on every request of a well-behaved client.
  const clean = new Map<string, number>();
  // Bumped by every failure recorded here: a clean read that was in flight meanwhile is not kept.
  let failuresSeen = 0;
  const stats = { failOpen: 0, failClosed: 0, settleFailures: 0 };
  const pending: SettleRequest[] = [];
  let replaying = false;

  /**
   * Replays settlements that failed during an outage, oldest first, so that their slots free
   * and their tokens are corrected as soon as the store is back rather than when leases end.
   * The scripts only touch windows that are still current, so a late replay cannot misplace
   * tokens, and a store that lost its data meanwhile is left untouched.
   */
  async function replay(): Promise<void> {
    if (replaying) return;
    replaying = true;
    try {
      while (pending.length > 0) {
        await store.settle(pending[0]!);
        pending.shift();
      }
    } catch {
      // Still unreachable: the next successful call tries again.
    } finally {
      replaying = false;
    }
  }

  const limitsOf = (key: LimitSubject) =>
    resolve(key.limits, defaults.get(key.environment) ?? NO_LIMITS);

  async function reserve(key: LimitSubject, estimate: number): Promise<LimitResult> {
    if (!(estimate >= 0)) throw new TypeError('reserve: tokens must be a non-negative number');
    const tokens = Math.ceil(estimate);
    const limits = limitsOf(key);
    const at = windowPoint(now());
    const leaseId = nextLease();
    let counters: KeyCounters;
    try {
      counters = await store.reserve({ keyId: key.id, tokens, limits, leaseId, at });
    } catch (error) {
      if (!(error instanceof LimitStoreUnavailableError)) throw error;
      return reserveWithoutStore(key, tokens, limits);
    }
    if (pending.length > 0) void replay();
    if (counters.refused !== 0) return refusal(limits, counters, tokens, at);
    const reservation = new HeldReservation(key.id, tokens, false, leaseId, at);
    return { allowed: true, reservation, figures: figuresOf(limits, counters, at) };
  }

  function reserveWithoutStore(
    key: LimitSubject,
    tokens: number,
    limits: ResolvedLimits,
  ): LimitResult {
    for (const name of LIMIT_NAMES) {
      if (limits[name] > 0 && outage[name] === 'refuse') {
        stats.failClosed += 1;
        return unavailable(name);
      }
    }
    stats.failOpen += 1;
    const reservation = new HeldReservation(key.id, tokens, true, '', null);
    return { allowed: true, reservation, figures: null };
  }

  async function settle(reservation: Reservation, actualTokens?: number): Promise<void> {
    const held = reservation as HeldReservation;
    if (held.settled) return;
    held.settled = true;
    if (held.degraded || !held.at) return;
    const actual =
      actualTokens !== undefined && actualTokens >= 0 ? Math.ceil(actualTokens) : held.tokens;
    const request: SettleRequest = {
      keyId: held.keyId,
      leaseId: held.leaseId,
      delta: actual - held.tokens,
      minute: held.at.minute,
      day: held.at.day,
      month: held.at.month,
    };
    try {
      await store.settle(request);
    } catch {
      // Until the replay, the slot stays taken and the tokens counted at the reserved amount,
      // which errs towards the limits.
      stats.settleFailures += 1;
      if (pending.length < MAX_PENDING_SETTLEMENTS) pending.push(request);
    }
  }

  async function authHit(address: string, cost: number): Promise<AuthLimitResult> {
    if (authLimit === 0) return { allowed: true };
    const name = `auth:${authBucket(address)}`;
    const clock = now();
    if (cost > 0) {
      clean.delete(name);
      failuresSeen++;
    } else if ((clean.get(name) ?? 0) > clock) {
      return { allowed: true };
    }
    const failuresBefore = failuresSeen;
    const at = windowPoint(clock);
    let bucket: { prev: number; curr: number };
    try {
      bucket = await store.hit(name, cost, at);
    } catch (error) {
      if (!(error instanceof LimitStoreUnavailableError)) throw error;
      if (outage.authFailures === 'refuse') {
        stats.failClosed += 1;
        return unavailable('authFailures');
      }
      stats.failOpen += 1;
      return { allowed: true };
    }
    if (bucket.prev === 0 && bucket.curr === 0 && cost === 0 && failuresSeen === failuresBefore) {
      if (clean.size >= MAX_CLEAN_ADDRESSES) clean.clear();
      clean.set(name, clock + CLEAN_TTL_MS);
    }
    // Blocked once the failures reach the limit: the next attempt would be one too many.
    if (slidingEstimate(bucket.prev, bucket.curr, at.elapsed) + 1 <= authLimit) {
      return { allowed: true };
    }
    const ms = slidingRetryMs(bucket.prev, bucket.curr, at.elapsed, 1, authLimit);
    return {
      allowed: false,
      limit: 'authFailures',
      code: LIMIT_CODES.authFailures,
      retryAfterSeconds: toRetrySeconds(ms),
      oversized: false,
      unavailable: false,
      figures: null,
    };
  }

  async function usage(key: LimitSubject): Promise<KeyUsage> {
    const limits = limitsOf(key);
    const at = windowPoint(now());
    const c = await store.read(key.id, at);
    const requestsMinute = Math.ceil(slidingEstimate(c.requestsPrev, c.requestsCurr, at.elapsed));
    const tokensMinute = Math.ceil(slidingEstimate(c.tokensPrev, c.tokensCurr, at.elapsed));
    const left = (limit: number, used: number) => (limit > 0 ? Math.max(0, limit - used) : null);
    return {
      keyId: key.id,
      at: new Date(at.now).toISOString(),
      limits,
      requestsMinute,
      tokensMinute,
      inFlight: c.inFlight,
      tokensDay: c.tokensDay,
      tokensMonth: c.tokensMonth,
      remaining: {
        requestsMinute: left(limits.rpm, requestsMinute),
        tokensMinute: left(limits.tpm, tokensMinute),
        concurrency: left(limits.concurrency, c.inFlight),
        tokensDay: left(limits.dailyTokens, c.tokensDay),
        tokensMonth: left(limits.monthlyTokens, c.tokensMonth),
      },
    };
  }

  return {
    reserve,
    settle,
    checkAuth: (address) => authHit(address, 0),
    recordAuthFailure: (address) => authHit(address, 1),
    usage,
    healthy: () => store.healthy(),
    stats: () => ({ ...stats, pendingSettlements: pending.length }),
    close: () => store.close(),
  };
}
