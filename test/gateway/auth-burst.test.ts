import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/load.js';
import { createGatewayLimits } from '../../src/gateway/limits.js';
import { createGateway, type Gateway } from '../../src/gateway/server.js';
import { createAuthenticator } from '../../src/keys/authenticator.js';
import { openSqliteKeyStore, type SqliteKeyStore } from '../../src/keys/sqlite-store.js';
import { MemoryLimitStore } from '../../src/limits/memory-store.js';
import type { WindowPoint } from '../../src/limits/types.js';
import { createLogger } from '../../src/logging.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';

// A burst of guesses against the per-address limit of failed authentications. The store answers
// reads of an address's failures late (as a busy shared store would), so every request of the
// burst passes the first check before any failure of the burst is counted.
const UPSTREAM_KEY = canaryUpstreamKey();
const LIMIT = 3;

/** The in-memory store, with reads of per-address buckets taken at once but answered 50 ms late. */
class SlowReads extends MemoryLimitStore {
  override async hit(bucket: string, cost: number, at: WindowPoint) {
    const counts = await super.hit(bucket, cost, at);
    if (cost === 0) await sleep(50);
    return counts;
  }
}

let mock: MockMistral;
let keys: SqliteKeyStore;
let gateway: Gateway;
let url: string;
let key: string;

before(async () => {
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
  const dir = await mkdtemp(join(tmpdir(), 'mg-burst-'));
  const config = await loadConfig({
    cwd: dir,
    env: {
      MISTRAL_API_KEY: UPSTREAM_KEY,
      MISTRAL_BASE_URL: mock.url,
      MISTRAL_GUARD_DATA_DIR: join(dir, 'data'),
    },
    requireUpstreamKey: true,
  });
  config.limits.authFailuresPerMinute = LIMIT;
  const logger = createLogger({ level: 'silent' });
  keys = openSqliteKeyStore(config.dataDir);
  key = (await keys.create({ name: 'burst', environment: 'development' })).key;
  const auth = createAuthenticator({ store: keys, changes: keys.changes() });
  gateway = await createGateway({
    config,
    logger,
    audit: null,
    authenticator: { authenticate: (h) => auth.authenticate(h), ping: async () => {} },
    limits: createGatewayLimits(config, logger, new SlowReads()),
  });
  url = await gateway.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  await gateway?.close();
  await keys?.close();
  await mock?.close();
});

function send(bearer: string) {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content: 'hi' }],
    }),
  });
}

test('a right key in a burst of wrong guesses is refused once the burst passed the limit', async () => {
  const wrong = `mg_${'x'.repeat(40)}`;
  const bearers = [...Array.from({ length: 10 }, () => wrong), key];
  const answers = await Promise.all(
    bearers.map(async (bearer) => {
      const res = await send(bearer);
      const body = (await res.json()) as { code?: string };
      return res.status === 200 ? 'ok' : (body.code ?? String(res.status));
    }),
  );
  assert.equal(answers.at(-1), 'too_many_auth_failures', `answers: ${answers.join(',')}`);
});
