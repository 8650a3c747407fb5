/**
 * What the limiter tells its caller, and how that becomes response headers and errors.
 */

import { type ErrorCode, GuardError } from '../errors.js';
import {
  type KeyCounters,
  LIMIT_BITS,
  LIMIT_NAMES,
  type LimitKind,
  type LimitName,
  type ResolvedLimits,
  type WindowPoint,
} from './types.js';
import {
  msToNextDay,
  msToNextMonth,
  slidingEstimate,
  slidingRetryMs,
  toRetrySeconds,
} from './window.js';

/** How long a client is told to wait when a limit could not be checked. */
const OUTAGE_RETRY_SECONDS = 5;

/**
 * The figures behind the `x-ratelimit-*` headers, after this request was counted. A limit of 0
 * means the key has none, and its headers are left out.
 */
export interface RateFigures {
  requestsMinuteLimit: number;
  requestsMinuteRemaining: number;
  tokensMinuteLimit: number;
  tokensMinuteRemaining: number;
  tokensMonthLimit: number;
  tokensMonthRemaining: number;
}

/**
 * A reservation taken by `Limiter.reserve()`. Hand it back to `Limiter.settle()` exactly once
 * the request is over, whatever the outcome; settling twice does nothing.
 */
export interface Reservation {
  readonly keyId: string;
  /** The tokens held until settlement. */
  readonly tokens: number;
  /** True when the store was unreachable and the request went through uncounted. */
  readonly degraded: boolean;
}

/** The request may go ahead; `reservation` must be settled. */
export interface LimitAllowed {
  allowed: true;
  reservation: Reservation;
  figures: RateFigures | null;
}

/** The request is refused by `limit`. */
export interface LimitRefused {
  allowed: false;
  limit: LimitKind;
  code: ErrorCode;
  /** Whole seconds, at least 1; the time after which a retry of the same request can pass. */
  retryAfterSeconds: number;
  /** The request alone is over the limit: retrying it will never pass. */
  oversized: boolean;
  /** The limit could not be checked (store unreachable) and its outage policy is `refuse`. */
  unavailable: boolean;
  figures: RateFigures | null;
}

/** The answer of `Limiter.reserve()`. */
export type LimitResult = LimitAllowed | LimitRefused;

/** The answer of the per-IP authentication checks. */
export type AuthLimitResult = { allowed: true } | LimitRefused;

/** The catalogue code for each limit, so that clients can tell a budget from a rate. */
export const LIMIT_CODES: Readonly<Record<LimitKind, ErrorCode>> = {
  concurrency: 'too_many_concurrent',
  rpm: 'rate_limited',
  tpm: 'token_limit',
  dailyTokens: 'budget_exhausted',
  monthlyTokens: 'budget_exhausted',
  authFailures: 'too_many_auth_failures',
};

/**
 * The rate-limit headers of a result, named as Mistral's own so that SDKs and dashboards that
 * read them keep working; `retry-after` is added when the request was refused.
 *
 * @example
 * reply.headers(headersFor(result));
 */
export function headersFor(result: LimitResult | AuthLimitResult): Record<string, string> {
  const headers: Record<string, string> = {};
  const figures = 'figures' in result ? result.figures : null;
  if (figures) {
    if (figures.requestsMinuteLimit > 0) {
      headers['x-ratelimit-limit-req-minute'] = String(figures.requestsMinuteLimit);
      headers['x-ratelimit-remaining-req-minute'] = String(figures.requestsMinuteRemaining);
    }
    if (figures.tokensMinuteLimit > 0) {
      headers['x-ratelimit-limit-tokens-minute'] = String(figures.tokensMinuteLimit);
      headers['x-ratelimit-remaining-tokens-minute'] = String(figures.tokensMinuteRemaining);
    }
    if (figures.tokensMonthLimit > 0) {
      headers['x-ratelimit-limit-tokens-month'] = String(figures.tokensMonthLimit);
      headers['x-ratelimit-remaining-tokens-month'] = String(figures.tokensMonthRemaining);
    }
  }
  if (!result.allowed) headers['retry-after'] = String(result.retryAfterSeconds);
  return headers;
}

/**
 * The error a refusal becomes: the limit's 429 code with `Retry-After` and the rate headers.
 * A limit that could not be checked becomes 503 `not_ready`: telling the client its budget is
 * spent would be false, and a 503 is retried by SDKs.
 */
export function errorFor(refusal: LimitRefused): GuardError {
  const headers = headersFor(refusal);
  if (refusal.unavailable) {
    return new GuardError('not_ready', {
      message: 'Usage limits cannot be checked right now. Retry after the time in Retry-After.',
      headers,
    });
  }
  return new GuardError(refusal.code, { headers });
}

/** The header figures of a key's counters after a check. */
export function figuresOf(limits: ResolvedLimits, c: KeyCounters, at: WindowPoint): RateFigures {
  const requests = slidingEstimate(c.requestsPrev, c.requestsCurr, at.elapsed);
  const tokens = slidingEstimate(c.tokensPrev, c.tokensCurr, at.elapsed);
  return {
    requestsMinuteLimit: limits.rpm,
    requestsMinuteRemaining: Math.max(0, Math.floor(limits.rpm - requests)),
    tokensMinuteLimit: limits.tpm,
    tokensMinuteRemaining: Math.max(0, Math.floor(limits.tpm - tokens)),
    tokensMonthLimit: limits.monthlyTokens,
    tokensMonthRemaining: Math.max(0, limits.monthlyTokens - c.tokensMonth),
  };
}

/** Milliseconds until the refused `limit` could take the request, or Infinity for never. */
function retryMs(
  limit: LimitName,
  limits: ResolvedLimits,
  c: KeyCounters,
  tokens: number,
  at: WindowPoint,
): number {
  switch (limit) {
    case 'concurrency':
      // A slot frees when some request ends, which nothing here can predict.
      return 1000;
    case 'rpm':
      return slidingRetryMs(c.requestsPrev, c.requestsCurr, at.elapsed, 1, limits.rpm);
    case 'tpm':
      return slidingRetryMs(c.tokensPrev, c.tokensCurr, at.elapsed, tokens, limits.tpm);
    case 'dailyTokens':
      return tokens > limits.dailyTokens ? Number.POSITIVE_INFINITY : msToNextDay(at.now);
    case 'monthlyTokens':
      return tokens > limits.monthlyTokens ? Number.POSITIVE_INFINITY : msToNextMonth(at.now);
  }
}

/**
 * Of the limits that refused, the one that holds the request longest decides what the client is
 * told: a spent monthly budget matters more than a busy minute.
 */
export function refusal(
  limits: ResolvedLimits,
  c: KeyCounters,
  tokens: number,
  at: WindowPoint,
): LimitRefused {
  let worst: LimitName = 'concurrency';
  let worstMs = -1;
  for (const name of LIMIT_NAMES) {
    if ((c.refused & LIMIT_BITS[name]) === 0) continue;
    const ms = retryMs(name, limits, c, tokens, at);
    if (ms > worstMs) {
      worst = name;
      worstMs = ms;
    }
  }
  const oversized = worstMs === Number.POSITIVE_INFINITY;
  return {
    allowed: false,
    limit: worst,
    code: LIMIT_CODES[worst],
    retryAfterSeconds: oversized ? 60 : toRetrySeconds(worstMs),
    oversized,
    unavailable: false,
    figures: figuresOf(limits, c, at),
  };
}

/** A refusal because `limit` could not be checked and its outage policy is `refuse`. */
export function unavailable(limit: LimitKind): LimitRefused {
  return {
    allowed: false,
    limit,
    code: LIMIT_CODES[limit],
    retryAfterSeconds: OUTAGE_RETRY_SECONDS,
    oversized: false,
    unavailable: true,
    figures: null,
  };
}
