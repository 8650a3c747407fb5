/**
 * Window arithmetic shared by both backends and the limiter.
 *
 * Per-minute limits use a sliding-window counter: two fixed buckets (the current minute and the
 * one before), the previous one weighted by how much of it still overlaps the last 60 seconds.
 * It needs two numbers per limit (a sliding log needs one entry per request, which for tokens is
 * unbounded), it is exact at the bucket edges and, for traffic spread over the previous minute,
 * within a few percent inside them. GCRA was the other candidate; it was set aside because it
 * admits a full burst on top of the steady rate (up to twice the limit in one minute) and cannot
 * say how many tokens were used in the last minute, which `usage()` reports.
 *
 * Budgets use calendar windows in UTC: a day starts at 00:00Z, a month on its first day.
 */

import { LIMIT_BITS, type ResolvedLimits, type WindowPoint } from './types.js';

/** Length of the per-minute windows. */
export const MINUTE_MS = 60_000;

const DAY_MS = 86_400_000;

/**
 * The month of a UTC day number, cached because it changes once a day and computing it needs a
 * Date, which the hot path should not allocate per request.
 */
let cachedDay = -1;
let cachedMonth = 0;
let cachedMonthEnd = 0;

function monthOf(day: number): void {
  if (day === cachedDay) return;
  const date = new Date(day * DAY_MS);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  cachedDay = day;
  cachedMonth = year * 12 + month;
  cachedMonthEnd = Date.UTC(year, month + 1, 1);
}

/** The window identities of an instant. */
export function windowPoint(now: number, windowMs = MINUTE_MS): WindowPoint {
  const day = Math.floor(now / DAY_MS);
  monthOf(day);
  const minute = Math.floor(now / windowMs);
  return { now, minute, elapsed: now - minute * windowMs, day, month: cachedMonth };
}

/**
 * The sliding estimate of what was used in the last window. The expression is written exactly
 * as in the Redis script so that both backends take the same decision on the same counters.
 */
export function slidingEstimate(
  prev: number,
  curr: number,
  elapsed: number,
  windowMs = MINUTE_MS,
): number {
  return prev * ((windowMs - elapsed) / windowMs) + curr;
}

/**
 * Milliseconds until `cost` more fits under `limit`, assuming nothing else is counted meanwhile;
 * `Infinity` when `cost` alone is over the limit, so that it never fits.
 */
export function slidingRetryMs(
  prev: number,
  curr: number,
  elapsed: number,
  cost: number,
  limit: number,
  windowMs = MINUTE_MS,
): number {
  if (cost > limit) return Number.POSITIVE_INFINITY;
  if (slidingEstimate(prev, curr, elapsed, windowMs) + cost <= limit) return 0;
  if (curr + cost <= limit) {
    // Fits in this bucket once enough of the previous one has slid out.
    const keep = (limit - curr - cost) / prev;
    return Math.max(0, (1 - keep) * windowMs - elapsed);
  }
  // Needs the next bucket, in which the current one becomes the sliding previous one.
  const keep = curr > 0 ? (limit - cost) / curr : 1;
  return windowMs - elapsed + (1 - keep) * windowMs;
}

/** Milliseconds until the next UTC day starts. */
export function msToNextDay(now: number): number {
  return (Math.floor(now / DAY_MS) + 1) * DAY_MS - now;
}

/** Milliseconds until the next UTC month starts. */
export function msToNextMonth(now: number): number {
  monthOf(Math.floor(now / DAY_MS));
  return cachedMonthEnd - now;
}

/** Whole seconds for `Retry-After`: rounded up, at least 1, so a client never retries at once. */
export function toRetrySeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * The bit set (`LIMIT_BITS`) of the limits that refuse one more request holding `tokens`: the
 * check is "used + this reservation <= limit", so a key at 9,000 of 10,000 tokens per minute
 * still passes a 1,000-token request. Arguments are positional so that the hot path allocates
 * nothing; the Redis script performs the same comparisons in the same order.
 */
export function refusedLimits(
  limits: ResolvedLimits,
  tokens: number,
  elapsed: number,
  requestsPrev: number,
  requestsCurr: number,
  tokensPrev: number,
  tokensCurr: number,
  tokensDay: number,
  tokensMonth: number,
  inFlight: number,
): number {
  let refused = 0;
  if (limits.concurrency > 0 && inFlight + 1 > limits.concurrency) {
    refused |= LIMIT_BITS.concurrency;
  }
  if (limits.rpm > 0 && slidingEstimate(requestsPrev, requestsCurr, elapsed) + 1 > limits.rpm) {
    refused |= LIMIT_BITS.rpm;
  }
  if (limits.tpm > 0 && slidingEstimate(tokensPrev, tokensCurr, elapsed) + tokens > limits.tpm) {
    refused |= LIMIT_BITS.tpm;
  }
  if (limits.dailyTokens > 0 && tokensDay + tokens > limits.dailyTokens) {
    refused |= LIMIT_BITS.dailyTokens;
  }
  if (limits.monthlyTokens > 0 && tokensMonth + tokens > limits.monthlyTokens) {
    refused |= LIMIT_BITS.monthlyTokens;
  }
  return refused;
}
