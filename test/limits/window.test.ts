import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authBucket } from '../../src/limits/address.js';
import { errorFor, headersFor, type LimitRefused } from '../../src/limits/decision.js';
import {
  msToNextDay,
  msToNextMonth,
  slidingEstimate,
  slidingRetryMs,
  toRetrySeconds,
  windowPoint,
} from '../../src/limits/window.js';

test('window identities follow UTC minutes, days and months', () => {
  const at = windowPoint(Date.UTC(2024, 1, 29, 23, 59, 30));
  assert.equal(at.elapsed, 30_000);
  assert.equal(at.day, Date.UTC(2024, 1, 29) / 86_400_000);
  assert.equal(at.month, 2024 * 12 + 1);
  assert.equal(windowPoint(Date.UTC(2024, 2, 1)).month, 2024 * 12 + 2);
});

test('the next day and month start at 00:00 UTC, leap days included', () => {
  const t = Date.UTC(2024, 1, 28, 18, 0, 0);
  assert.equal(msToNextDay(t), 6 * 3_600_000);
  assert.equal(msToNextMonth(t), Date.UTC(2024, 2, 1) - t);
  assert.equal(msToNextMonth(Date.UTC(2024, 11, 31, 12)), 12 * 3_600_000);
});

test('the sliding estimate weighs the previous minute by its remaining overlap', () => {
  assert.equal(slidingEstimate(100, 10, 0), 110);
  assert.equal(slidingEstimate(100, 10, 15_000), 85);
  assert.equal(slidingEstimate(100, 10, 60_000), 10);
});

test('the retry delay is the moment the request fits, or never when it cannot', () => {
  assert.equal(slidingRetryMs(0, 5, 0, 5, 10), 0);
  // 100 of the previous minute must fall to 50: half way through this minute, 30 s from now.
  assert.equal(slidingRetryMs(100, 0, 0, 50, 100), 30_000);
  // Current bucket full: wait for the edge, then for it to slide half out.
  assert.equal(slidingRetryMs(0, 100, 20_000, 50, 100), 40_000 + 30_000);
  assert.equal(slidingRetryMs(0, 0, 0, 101, 100), Number.POSITIVE_INFINITY);
  assert.equal(toRetrySeconds(1), 1);
  assert.equal(toRetrySeconds(0), 1);
  assert.equal(toRetrySeconds(1_001), 2);
});

test('failed authentications count IPv6 addresses by their /64', () => {
  assert.equal(authBucket('192.0.2.7'), '192.0.2.7');
  assert.equal(authBucket('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(authBucket('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(authBucket('2001:0DB8:0:0:ffff::1'), '2001:db8:0:0::/64');
  assert.notEqual(authBucket('2001:db8:0:1::1'), authBucket('2001:db8::1'));
  assert.equal(authBucket('::1'), '0:0:0:0::/64');
});

const refusal: LimitRefused = {
  allowed: false,
  limit: 'tpm',
  code: 'token_limit',
  retryAfterSeconds: 12,
  oversized: false,
  unavailable: false,
  figures: {
    requestsMinuteLimit: 0,
    requestsMinuteRemaining: 0,
    tokensMinuteLimit: 10_000,
    tokensMinuteRemaining: 40,
    tokensMonthLimit: 1_000_000,
    tokensMonthRemaining: 5_000,
  },
};

test('a refusal carries Mistral-named headers for the limits the key has, and Retry-After', () => {
  assert.deepEqual(headersFor(refusal), {
    'x-ratelimit-limit-tokens-minute': '10000',
    'x-ratelimit-remaining-tokens-minute': '40',
    'x-ratelimit-limit-tokens-month': '1000000',
    'x-ratelimit-remaining-tokens-month': '5000',
    'retry-after': '12',
  });
});

test('a refusal becomes its 429 code, and an unchecked limit a 503, not a budget', () => {
  const e = errorFor(refusal);
  assert.equal(e.code, 'token_limit');
  assert.equal(e.status, 429);
  assert.equal(e.headers?.['retry-after'], '12');
  const down = errorFor({ ...refusal, limit: 'monthlyTokens', unavailable: true, figures: null });
  assert.equal(down.code, 'not_ready');
  assert.equal(down.status, 503);
  assert.deepEqual(down.headers, { 'retry-after': '12' });
});
