import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createLimiter } from '../../src/limits/limiter.js';
import { MemoryLimitStore } from '../../src/limits/memory-store.js';
import { RedisLimitStore } from '../../src/limits/redis-store.js';
import { type LimitStore, LimitStoreUnavailableError } from '../../src/limits/types.js';
import {
  deletePrefix,
  fakeClock,
  freePort,
  REDIS_URL,
  redisAvailable,
  startRedis,
  stopRedis,
  uniquePrefix,
  until,
} from './helpers.js';

const prefix = uniquePrefix();
const reachable = await redisAvailable();
const skip = reachable ? false : `no Redis on ${REDIS_URL}`;
after(() => (reachable ? deletePrefix(prefix) : undefined));

async function replica(clock: ReturnType<typeof fakeClock>) {
  const store = new RedisLimitStore({ url: REDIS_URL, prefix, leaseMs: 60_000 });
  await store.ready();
  return createLimiter({ store, now: clock.now });
}

describe('two replicas sharing one Redis', { skip }, () => {
  for (const [name, limits] of [
    ['requests per minute', { rpm: 7 }],
    ['concurrent requests', { concurrency: 7 }],
    ['tokens per minute', { tpm: 700 }],
  ] as const) {
    test(`with a limit of N ${name}, 3N concurrent requests let exactly N through`, async () => {
      const clock = fakeClock();
      const [a, b] = [await replica(clock), await replica(clock)];
      const key = { id: `replicas_${name.replaceAll(' ', '_')}`, environment: 'x', limits };
      const results = await Promise.all(
        Array.from({ length: 21 }, (_, i) => (i % 2 ? a : b).reserve(key, 100)),
      );
      assert.equal(results.filter((r) => r.allowed).length, 7);
      await Promise.all([a.close(), b.close()]);
    });
  }

  test('a slot held by a replica that died frees when its lease ends', async () => {
    const clock = fakeClock();
    const [a, b] = [await replica(clock), await replica(clock)];
    const key = { id: 'lease_expiry', environment: 'x', limits: { concurrency: 1 } };
    assert.equal((await a.reserve(key, 1)).allowed, true);
    await a.close();
    assert.equal((await b.reserve(key, 1)).allowed, false);
    clock.advance(60_001);
    assert.equal((await b.reserve(key, 1)).allowed, true);
    await b.close();
  });

  test('scripts are reloaded after Redis loses its script cache', async () => {
    const clock = fakeClock();
    const limiter = await replica(clock);
    const key = { id: 'script_flush', environment: 'x', limits: { rpm: 5 } };
    assert.equal((await limiter.reserve(key, 1)).allowed, true);
    const admin = new Redis(REDIS_URL);
    await admin.script('FLUSH');
    admin.disconnect();
    assert.equal((await limiter.reserve(key, 1)).allowed, true);
    assert.equal((await limiter.usage(key)).requestsMinute, 2);
    await limiter.close();
  });
});

describe('a Redis outage', { skip }, () => {
  test('each limit follows its policy while Redis is down, and holds once it is back', async () => {
    const port = await freePort();
    await startRedis(port);
    const clock = fakeClock();
    const store = new RedisLimitStore({ url: `redis://127.0.0.1:${port}`, prefix: 'outage:' });
    const limiter = createLimiter({ store, now: clock.now });
    try {
      await store.ready();
      const rate = { id: 'rate_only', environment: 'x', limits: { rpm: 3 } };
      const budget = {
        id: 'with_budget',
        environment: 'x',
        limits: { rpm: 3, monthlyTokens: 1e6 },
      };
      const held = await limiter.reserve(rate, 10);
      assert.equal(held.allowed, true);
      assert.equal(limiter.healthy(), true);

      stopRedis(port);
      await until(() => !limiter.healthy(), 5000);
      const open = await limiter.reserve(rate, 10);
      assert.equal(open.allowed, true);
      if (open.allowed) assert.equal(open.reservation.degraded, true);
      const closed = await limiter.reserve(budget, 10);
      assert.equal(closed.allowed, false);
      if (!closed.allowed) {
        assert.equal(closed.unavailable, true);
        assert.equal(closed.limit, 'monthlyTokens');
      }
      assert.equal((await limiter.checkAuth('192.0.2.1')).allowed, true);
      if (held.allowed) await limiter.settle(held.reservation, 5);
      if (open.allowed) await limiter.settle(open.reservation, 5);
      await assert.rejects(limiter.usage(rate), { name: 'LimitStoreUnavailableError' });
      assert.deepEqual(limiter.stats(), {
        failOpen: 2,
        failClosed: 1,
        settleFailures: 1,
        pendingSettlements: 1,
      });

      await startRedis(port);
      await until(() => limiter.healthy(), 10_000);
      const after = [];
      for (let i = 0; i < 4; i++) after.push((await limiter.reserve(rate, 10)).allowed);
      assert.deepEqual(after, [true, true, true, false]);
      assert.equal((await limiter.reserve(budget, 10)).allowed, true);
      await until(() => limiter.stats().pendingSettlements === 0, 5000);
    } finally {
      await limiter.close();
      stopRedis(port);
    }
  });
});

/** A memory store that can be switched off, as a Redis that went away. */
class SwitchableStore extends MemoryLimitStore {
  down = false;
  override async reserve(...args: Parameters<MemoryLimitStore['reserve']>) {
    if (this.down) throw new LimitStoreUnavailableError();
    return super.reserve(...args);
  }
  override async settle(...args: Parameters<MemoryLimitStore['settle']>) {
    if (this.down) throw new LimitStoreUnavailableError();
    return super.settle(...args);
  }
}

describe('settlements during an outage', () => {
  test('a failed settlement is replayed once the store answers, freeing its slot', async () => {
    const clock = fakeClock();
    const store = new SwitchableStore();
    const limiter = createLimiter({ store, now: clock.now });
    const key = { id: 'replay', environment: 'x', limits: { concurrency: 1, tpm: 1_000 } };
    const held = await limiter.reserve(key, 1_000);
    assert.equal(held.allowed, true);
    store.down = true;
    if (held.allowed) await limiter.settle(held.reservation, 100);
    assert.equal(limiter.stats().pendingSettlements, 1);
    store.down = false;
    // The first call after the outage still sees the slot taken, and triggers the replay.
    assert.equal((await limiter.reserve(key, 10)).allowed, false);
    await until(() => limiter.stats().pendingSettlements === 0, 1000);
    assert.equal((await limiter.reserve(key, 900)).allowed, true);
    assert.equal((await limiter.usage(key)).tokensMinute, 1_000);
  });
});

describe('misconfiguration', () => {
  test('a Redis store without a prefix or with two connections is refused at construction', () => {
    assert.throws(() => new RedisLimitStore({ url: REDIS_URL, prefix: '' }), /prefix/);
    const client = new Redis(REDIS_URL, { lazyConnect: true });
    assert.throws(
      () => new RedisLimitStore({ url: REDIS_URL, client, prefix: 'p:' }),
      /exactly one/,
    );
    assert.throws(() => new RedisLimitStore({ prefix: 'p:' }), /exactly one/);
    assert.throws(
      () => new RedisLimitStore({ client: {} as Redis, prefix: 'p:' }),
      /must be an ioredis client/,
    );
    client.disconnect();
  });

  test('a store missing a method, a bad policy or a bad limit is refused by createLimiter', () => {
    const partial = { reserve() {} } as unknown as LimitStore;
    assert.throws(() => createLimiter({ store: partial }), /no settle\(\) method/);
    const store = new MemoryLimitStore();
    assert.throws(
      () => createLimiter({ store, outage: { rpm: 'maybe' as 'allow' } }),
      /outage.rpm must be 'allow' or 'refuse'/,
    );
    assert.throws(
      () => createLimiter({ store, defaults: { production: { rpm: -1 } } }),
      /production.rpm must be a non-negative integer/,
    );
  });
});
