// Throughput of the limits engine: reservations (each followed by its settlement, as a request
// does) per second on the memory and the Redis backends, measured in one run. Redis figures are
// for one connection, sequential (round-trip bound) and with many requests in flight (what a busy
// gateway does). Usage: node --import tsx bench/limits.ts [seconds per case, default 2]
import { createLimiter, type Limiter } from '../src/limits/limiter.js';
import { MemoryLimitStore } from '../src/limits/memory-store.js';
import { RedisLimitStore } from '../src/limits/redis-store.js';
import type { LimitStore } from '../src/limits/types.js';
import { deletePrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../test/limits/helpers.js';

const seconds = Number(process.argv[2] ?? 2);
const KEYS = Array.from({ length: 100 }, (_, i) => ({
  id: `bench_${i}`,
  environment: 'bench',
  // High enough that every request passes: the cost measured is the full check and update.
  limits: { rpm: 1e9, tpm: 1e12, concurrency: 1e6, dailyTokens: 1e12, monthlyTokens: 1e13 },
}));

async function worker(limiter: Limiter, until: number, counter: { n: number }): Promise<void> {
  let i = counter.n;
  while (performance.now() < until) {
    const key = KEYS[i++ % KEYS.length]!;
    const result = await limiter.reserve(key, 1200);
    if (!result.allowed) throw new Error('bench limits must not refuse');
    await limiter.settle(result.reservation, 800);
    counter.n += 1;
  }
}

async function measure(name: string, store: LimitStore, inFlight: number) {
  const limiter = createLimiter({ store });
  const warm = performance.now() + 300;
  await Promise.all(Array.from({ length: inFlight }, () => worker(limiter, warm, { n: 0 })));
  const counter = { n: 0 };
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(Array.from({ length: inFlight }, () => worker(limiter, end, counter)));
  const elapsed = (performance.now() - start) / 1000;
  const perSec = Math.round(counter.n / elapsed);
  return {
    backend: name,
    inFlight,
    'reserve+settle/s': perSec,
    // Throughput inverted: CPU cost for memory, amortised round trips for Redis.
    'µs per pair': Number((1e6 / perSec).toFixed(2)),
  };
}

const rows = [];
rows.push(await measure('memory', new MemoryLimitStore(), 1));
rows.push(await measure('memory', new MemoryLimitStore(), 64));
if (await redisAvailable()) {
  const prefix = uniquePrefix();
  for (const inFlight of [1, 64, 256]) {
    const store = new RedisLimitStore({ url: REDIS_URL, prefix });
    await store.ready();
    rows.push(await measure('redis', store, inFlight));
    await store.close();
  }
  await deletePrefix(prefix);
} else {
  console.error(`no Redis on ${REDIS_URL}: Redis figures skipped`);
}
console.table(rows);
