import { after } from 'node:test';
import { MemoryLimitStore } from '../../src/limits/memory-store.js';
import { RedisLimitStore } from '../../src/limits/redis-store.js';
import { deletePrefix, REDIS_URL, redisAvailable, uniquePrefix } from './helpers.js';
import { limiterSuite } from './suite.js';

limiterSuite('memory', async () => new MemoryLimitStore());

const prefix = uniquePrefix();
const reachable = await redisAvailable();
limiterSuite(
  'redis',
  async () => {
    const store = new RedisLimitStore({ url: REDIS_URL, prefix });
    await store.ready();
    return store;
  },
  reachable ? false : `no Redis on ${REDIS_URL}`,
);
after(() => (reachable ? deletePrefix(prefix) : undefined));
