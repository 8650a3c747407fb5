// Cost of the limits engine in the gateway: requests/s and latency of a non-streamed 2 KB chat,
// in one run, with limits off, counted in memory, and counted in Redis (127.0.0.1:6379).
// Target: Redis mode reaches at least 80% of memory mode.
//
//   npm run bench:limits     (BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS to change the load)
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  loadSettings,
  measure,
  report,
  startBaselines,
  startGatewayVariant,
  variantTargets,
} from './harness.js';

const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `mg-bench-${randomBytes(4).toString('hex')}:`;

// Limits high enough never to refuse, so every request runs the full check and settlement.
const counted =
  '{ rpm: 1000000000, tpm: 1000000000000, concurrency: 100000, dailyTokens: 1000000000000 }';
const off = '{ rpm: null, tpm: null, concurrency: null, dailyTokens: null }';
const yaml = (limits: string, extra = '') =>
  `${extra}profiles:\n  development:\n    limits: ${limits}\n`;

const baselines = await startBaselines();
try {
  const variants = {
    'limits off': await startGatewayVariant(baselines, { yaml: yaml(off) }),
    'limits in memory': await startGatewayVariant(baselines, { yaml: yaml(counted) }),
    'limits in redis': await startGatewayVariant(baselines, {
      yaml: yaml(counted, `limits: { prefix: '${prefix}' }\n`),
      env: { MISTRAL_GUARD_REDIS_URL: redisUrl },
    }),
  };
  const measured = await measure(
    [
      { name: 'passthrough', url: baselines.passthrough.url, key: baselines.upstreamKey },
      ...variantTargets(variants),
    ],
    loadSettings(),
  );
  await report('limits in the gateway, 2 KB chat', measured, [
    ['redis / memory', 'limits in redis', 'limits in memory'],
    ['memory / off', 'limits in memory', 'limits off'],
    ['off / passthrough', 'limits off', 'passthrough'],
  ]);
} finally {
  for (const child of baselines.children.reverse()) await child.stop();
  const redis = new Redis(redisUrl);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
}
