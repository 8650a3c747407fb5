import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KeyLimits } from '../../src/keys/types.js';
import { headersFor, type LimitResult } from '../../src/limits/decision.js';
import { createLimiter, type LimiterOptions, type LimitSubject } from '../../src/limits/limiter.js';
import type { LimitStore } from '../../src/limits/types.js';
import { fakeClock } from './helpers.js';

/** Opens a fresh store for one test; the suite closes it. */
export type OpenStore = () => Promise<LimitStore>;

let keySeq = 0;

/** A number no other test of this run uses, for key ids and client addresses. */
function fresh(): number {
  keySeq += 1;
  return keySeq;
}

function key(limits: KeyLimits | null, environment = 'production'): LimitSubject {
  return { id: `key_${process.pid}_${fresh()}`, environment, limits };
}

async function setUp(open: OpenStore, options: Omit<LimiterOptions, 'store' | 'now'> = {}) {
  const clock = fakeClock();
  const store = await open();
  const limiter = createLimiter({ ...options, store, now: clock.now });
  return { clock, limiter };
}

function refused(result: LimitResult) {
  assert.equal(result.allowed, false, 'expected a refusal');
  return result as Extract<LimitResult, { allowed: false }>;
}

function allowed(result: LimitResult) {
  assert.equal(result.allowed, true, 'expected the request to pass');
  return result as Extract<LimitResult, { allowed: true }>;
}

/** The behaviour every backend must show; run once per backend. */
export function limiterSuite(backend: string, open: OpenStore, skip: string | false = false) {
  describe(`limits on the ${backend} backend`, { skip }, () => {
    test('requests under the per-minute rate pass and the headers count down', async () => {
      const { limiter } = await setUp(open);
      const k = key({ rpm: 3 });
      const first = allowed(await limiter.reserve(k, 10));
      assert.deepEqual(headersFor(first), {
        'x-ratelimit-limit-req-minute': '3',
        'x-ratelimit-remaining-req-minute': '2',
      });
      await limiter.reserve(k, 10);
      const third = allowed(await limiter.reserve(k, 10));
      assert.equal(third.figures?.requestsMinuteRemaining, 0);
      await limiter.close();
    });

    test('a request over the rate gets rate_limited and passes after Retry-After', async () => {
      const { clock, limiter } = await setUp(open);
      const k = key({ rpm: 2 });
      clock.advance(15_000);
      await limiter.reserve(k, 1);
      await limiter.reserve(k, 1);
      const no = refused(await limiter.reserve(k, 1));
      assert.equal(no.code, 'rate_limited');
      assert.equal(no.limit, 'rpm');
      assert.equal(headersFor(no)['retry-after'], String(no.retryAfterSeconds));
      // Both requests sit in the current minute: they must slide out of the window (45 s to the
      // edge, then half of the next minute for one of the two to leave).
      assert.equal(no.retryAfterSeconds, 75);
      clock.advance(74_000);
      refused(await limiter.reserve(k, 1));
      clock.advance(1_000);
      allowed(await limiter.reserve(k, 1));
      await limiter.close();
    });

    test('the previous minute counts by its overlap with the last 60 seconds', async () => {
      const { clock, limiter } = await setUp(open);
      const k = key({ tpm: 1000 });
      allowed(await limiter.reserve(k, 1000));
      clock.advance(60_000 + 30_000);
      // Half of the previous minute's 1,000 tokens still count.
      allowed(await limiter.reserve(k, 500));
      const no = refused(await limiter.reserve(k, 1));
      assert.equal(no.code, 'token_limit');
      assert.equal(no.figures?.tokensMinuteRemaining, 0);
      await limiter.close();
    });

    test('a key at 9,000 of 10,000 tokens a minute still gets a request that fits', async () => {
      const { limiter } = await setUp(open);
      const k = key({ tpm: 10_000 });
      allowed(await limiter.reserve(k, 9_000));
      const small = allowed(await limiter.reserve(k, 400));
      assert.equal(small.figures?.tokensMinuteRemaining, 600);
      allowed(await limiter.reserve(k, 600));
      const over = refused(await limiter.reserve(k, 1));
      assert.equal(over.code, 'token_limit');
      await limiter.close();
    });

    test('a request larger than the limit itself is refused as oversized', async () => {
      const { limiter } = await setUp(open);
      const no = refused(await limiter.reserve(key({ tpm: 1000 }), 1001));
      assert.equal(no.oversized, true);
      assert.equal(no.code, 'token_limit');
      await limiter.close();
    });

    test('50 concurrent reservations on a budget for 10: no overdraw, exact totals', async () => {
      const { limiter } = await setUp(open);
      const k = key({ dailyTokens: 1_000 });
      const results = await Promise.all(Array.from({ length: 50 }, () => limiter.reserve(k, 100)));
      const passed = results.filter((r) => r.allowed);
      assert.equal(passed.length, 10);
      const during = await limiter.usage(k);
      assert.ok(during.tokensDay <= 1_000 + 100, 'overdraw within one reservation');
      const actuals = passed.map((_, i) => 40 + i * 7);
      await Promise.all(
        passed.map((r, i) => (r.allowed ? limiter.settle(r.reservation, actuals[i]) : null)),
      );
      const after = await limiter.usage(k);
      assert.equal(
        after.tokensDay,
        actuals.reduce((a, b) => a + b, 0),
      );
      assert.equal(after.inFlight, 0);
      await limiter.close();
    });

    test('tokens given back at settlement can be reserved again', async () => {
      const { limiter } = await setUp(open);
      const k = key({ tpm: 1_000, monthlyTokens: 1_000 });
      const first = allowed(await limiter.reserve(k, 1_000));
      refused(await limiter.reserve(k, 100));
      await limiter.settle(first.reservation, 300);
      const again = allowed(await limiter.reserve(k, 700));
      assert.equal(again.figures?.tokensMonthRemaining, 0);
      await limiter.close();
    });

    test('a usage above the reservation is charged in full', async () => {
      const { limiter } = await setUp(open);
      const k = key({ monthlyTokens: 10_000 });
      const r = allowed(await limiter.reserve(k, 100));
      await limiter.settle(r.reservation, 250);
      assert.equal((await limiter.usage(k)).tokensMonth, 250);
      await limiter.close();
    });

    test('a settlement after the minute ended corrects the previous minute', async () => {
      const { clock, limiter } = await setUp(open);
      const k = key({ tpm: 1_000 });
      const r = allowed(await limiter.reserve(k, 1_000));
      clock.advance(60_000);
      refused(await limiter.reserve(k, 10));
      await limiter.settle(r.reservation, 0);
      allowed(await limiter.reserve(k, 1_000));
      await limiter.close();
    });

    test('reservations made together are decided one after the other, each in its own minute', async () => {
      const { clock, limiter } = await setUp(open);
      const k = key({ rpm: 2, dailyTokens: 250 });
      clock.advance(59_000);
      // Started in the same turn, without awaiting: a store may check them together.
      const first = limiter.reserve(k, 100);
      const second = limiter.reserve(k, 100);
      clock.advance(1_000);
      const third = limiter.reserve(k, 100);
      const results = await Promise.all([first, second, third]);
      allowed(results[0]!);
      allowed(results[1]!);
      // In the next minute the two requests still weigh fully (the window has barely slid) and
      // the day's budget holds 50 tokens: the third is refused on both counts, and the budget,
      // which holds longer, is the one reported.
      const no = refused(results[2]!);
      assert.equal(no.code, 'budget_exhausted');
      assert.equal((await limiter.usage(k)).tokensDay, 200);
      assert.equal((await limiter.usage(k)).inFlight, 2);
      await limiter.close();
    });

    test('a concurrency slot is released on settle and on abort, once', async () => {
      const { limiter } = await setUp(open);
      const k = key({ concurrency: 2 });
      const a = allowed(await limiter.reserve(k, 10));
      const b = allowed(await limiter.reserve(k, 10));
      const no = refused(await limiter.reserve(k, 10));
      assert.equal(no.code, 'too_many_concurrent');
      await limiter.settle(a.reservation, 5);
      const c = allowed(await limiter.reserve(k, 10));
      // An aborted stream settles without a usage figure: the slot frees, the tokens stay.
      await limiter.settle(b.reservation);
      await limiter.settle(b.reservation);
      allowed(await limiter.reserve(k, 10));
      refused(await limiter.reserve(k, 10));
      await limiter.settle(c.reservation, 0);
      const usage = await limiter.usage(k);
      assert.equal(usage.inFlight, 1);
      assert.equal(usage.tokensMinute, 5 + 10 + 0 + 10);
      await limiter.close();
    });

    test('a spent daily budget is refused until 00:00 UTC', async () => {
      const { clock, limiter } = await setUp(open);
      const k = key({ dailyTokens: 500 });
      allowed(await limiter.reserve(k, 500));
      const no = refused(await limiter.reserve(k, 1));
      assert.equal(no.code, 'budget_exhausted');
      assert.equal(no.limit, 'dailyTokens');
      assert.equal(no.retryAfterSeconds, 12 * 3600);
      clock.advance(12 * 3600 * 1000);
      allowed(await limiter.reserve(k, 500));
      await limiter.close();
    });

    test('a spent monthly budget is refused until the first of the next month', async () => {
      const { clock, limiter } = await setUp(open);
      const k = key({ monthlyTokens: 2_000, tpm: 5_000 });
      allowed(await limiter.reserve(k, 2_000));
      clock.advance(2 * 86_400_000);
      const no = refused(await limiter.reserve(k, 10));
      assert.equal(no.limit, 'monthlyTokens');
      assert.equal(no.retryAfterSeconds, (Date.UTC(2025, 1, 1) - clock.now()) / 1000);
      assert.equal(headersFor(no)['x-ratelimit-remaining-tokens-month'], '0');
      clock.set(Date.UTC(2025, 1, 1));
      allowed(await limiter.reserve(k, 2_000));
      await limiter.close();
    });

    test('when several limits refuse, the one that holds longest is reported', async () => {
      const { limiter } = await setUp(open);
      const k = key({ rpm: 1, dailyTokens: 100 });
      allowed(await limiter.reserve(k, 100));
      assert.equal(refused(await limiter.reserve(k, 1)).limit, 'dailyTokens');
      await limiter.close();
    });

    test('profile defaults apply and a key’s own limit replaces its profile’s', async () => {
      const { limiter } = await setUp(open, { defaults: { production: { rpm: 1, tpm: 100 } } });
      const plain = key(null);
      allowed(await limiter.reserve(plain, 10));
      assert.equal(refused(await limiter.reserve(plain, 10)).limit, 'rpm');
      const own = key({ rpm: 5 });
      const r = allowed(await limiter.reserve(own, 10));
      assert.equal(r.figures?.requestsMinuteLimit, 5);
      assert.equal(r.figures?.tokensMinuteLimit, 100);
      await limiter.close();
    });

    test('usage reports the current windows and what is left', async () => {
      const { clock, limiter } = await setUp(open);
      const k = key({ rpm: 10, tpm: 1_000, concurrency: 4, dailyTokens: 5_000 });
      const r = allowed(await limiter.reserve(k, 300));
      await limiter.reserve(k, 200);
      await limiter.settle(r.reservation, 100);
      clock.advance(1_000);
      const u = await limiter.usage(k);
      assert.equal(u.requestsMinute, 2);
      assert.equal(u.tokensMinute, 300);
      assert.equal(u.inFlight, 1);
      assert.equal(u.tokensDay, 300);
      assert.equal(u.tokensMonth, 300);
      assert.deepEqual(u.remaining, {
        requestsMinute: 8,
        tokensMinute: 700,
        concurrency: 3,
        tokensDay: 4_700,
        tokensMonth: null,
      });
      await limiter.close();
    });

    test('an address is blocked after 20 failed authentications in a minute', async () => {
      const { clock, limiter } = await setUp(open);
      const n = fresh();
      const ip = `10.${n >> 8}.${n & 255}.1`;
      for (let i = 0; i < 19; i++)
        assert.equal((await limiter.recordAuthFailure(ip)).allowed, true);
      assert.equal((await limiter.checkAuth(ip)).allowed, true);
      const last = await limiter.recordAuthFailure(ip);
      assert.equal(last.allowed, false);
      const blocked = await limiter.checkAuth(ip);
      assert.equal(blocked.allowed, false);
      if (!blocked.allowed) {
        assert.equal(blocked.code, 'too_many_auth_failures');
        clock.advance(blocked.retryAfterSeconds * 1000);
      }
      assert.equal((await limiter.checkAuth(ip)).allowed, true);
      await limiter.close();
    });

    test('failures an address makes elsewhere are seen within a second, its own at once', async () => {
      const clock = fakeClock();
      const store = await open();
      const here = createLimiter({ store, now: clock.now, authFailuresPerMinute: 2 });
      const there = createLimiter({ store, now: clock.now, authFailuresPerMinute: 2 });
      const n = fresh();
      const ip = `10.${n >> 8}.${n & 255}.9`;
      assert.equal((await here.checkAuth(ip)).allowed, true);
      await there.recordAuthFailure(ip);
      assert.equal((await there.recordAuthFailure(ip)).allowed, false);
      clock.advance(1_000);
      assert.equal((await here.checkAuth(ip)).allowed, false, 'the clean read has expired');

      const m = fresh();
      const other = `10.${m >> 8}.${m & 255}.9`;
      assert.equal((await here.checkAuth(other)).allowed, true);
      await there.recordAuthFailure(other);
      await here.recordAuthFailure(other);
      assert.equal(
        (await here.checkAuth(other)).allowed,
        false,
        'its own failure drops the clean read',
      );
      await here.close();
    });

    test('a clean read that crossed a failure is not trusted afterwards', async () => {
      const { limiter } = await setUp(open, { authFailuresPerMinute: 1 });
      const n = fresh();
      const ip = `10.${n >> 8}.${n & 255}.7`;
      const check = limiter.checkAuth(ip);
      assert.equal((await limiter.recordAuthFailure(ip)).allowed, false);
      await check;
      assert.equal((await limiter.checkAuth(ip)).allowed, false);
      await limiter.close();
    });

    test('failed authentications from one IPv6 /64 share a bucket', async () => {
      const { limiter } = await setUp(open, { authFailuresPerMinute: 2 });
      const net = `2001:db8:${fresh().toString(16)}:1`;
      await limiter.recordAuthFailure(`${net}::1`);
      await limiter.recordAuthFailure(`${net}:0:0:0:ffff`);
      assert.equal((await limiter.checkAuth(`${net}::abcd`)).allowed, false);
      assert.equal((await limiter.checkAuth('2001:db8:ffff:2::1')).allowed, true);
      await limiter.close();
    });

    test('a key without limits is counted but never refused', async () => {
      const { limiter } = await setUp(open);
      const k = key(null);
      for (let i = 0; i < 100; i++) allowed(await limiter.reserve(k, 1_000));
      assert.deepEqual(headersFor(await limiter.reserve(k, 1)), {});
      assert.equal((await limiter.usage(k)).requestsMinute, 101);
      await limiter.close();
    });
  });
}
