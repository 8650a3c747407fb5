import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import pg from 'pg';
import { PG_URL } from '../store/backends.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';
import { relay } from '../support/tcp-relay.js';

// The store and the audit trail through real gateway processes: kill -9 under load, a
// PostgreSQL outage under load, and two replicas sharing one PostgreSQL.
const UPSTREAM_KEY = canaryUpstreamKey();
const ADMIN_TOKEN = `admin-${randomBytes(24).toString('base64url')}`;
const NO_PG = PG_URL ? false : 'no PostgreSQL on 127.0.0.1:5432';

let mock: MockMistral;
const gateways: Child[] = [];

/** One gateway's persistence: a data directory, and for PostgreSQL a schema of its own. */
interface Store {
  name: 'sqlite' | 'postgres';
  cwd: string;
  dataDir: string;
  /** What points the CLI at the store. */
  env: Record<string, string>;
}

async function newStore(t: TestContext, name: Store['name']): Promise<Store> {
  const cwd = await mkdtemp(join(tmpdir(), 'mg-e2e-store-'));
  t.after(() => rm(cwd, { recursive: true, force: true }));
  // Limits stay open: the load here must never be refused for its rate.
  await writeFile(
    join(cwd, 'mistral-guard.yaml'),
    [
      'profiles:',
      '  development:',
      '    limits: { rpm: null, tpm: null, concurrency: null, dailyTokens: null }',
      '',
    ].join('\n'),
  );
  const env: Record<string, string> = {};
  if (name === 'postgres') {
    const schema = `mg_e2e_${randomBytes(6).toString('hex')}`;
    env.MISTRAL_GUARD_DATABASE_URL = PG_URL!;
    env.MISTRAL_GUARD_DATABASE_SCHEMA = schema;
    t.after(async () => {
      const client = new pg.Client({ connectionString: PG_URL! });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    });
  }
  return { name, cwd, dataDir: join(cwd, 'data'), env };
}

function cli(store: Store, args: string[]) {
  return runCli([...args, '--data-dir', store.dataDir], { cwd: store.cwd, env: store.env });
}

async function createKey(store: Store): Promise<{ id: string; key: string }> {
  const created = await cli(store, ['keys', 'create', '--name', 'e2e-store', '--json']);
  assert.equal(created.code, 0, created.stderr);
  return JSON.parse(created.stdout);
}

async function startGateway(store: Store, env: Record<string, string> = {}): Promise<Child> {
  const gateway = await startGatewayProcess({
    dataDir: store.dataDir,
    upstreamUrl: mock.url,
    cwd: store.cwd,
    env: {
      MISTRAL_API_KEY: UPSTREAM_KEY,
      MISTRAL_GUARD_ENV: 'development',
      ...store.env,
      ...env,
    },
  });
  gateways.push(gateway);
  return gateway;
}

function chat(url: string, key: string, requestId: string, stream: boolean) {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      'x-request-id': requestId,
    },
    body: JSON.stringify({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content: 'Say hello' }],
      max_tokens: 40,
      stream,
    }),
  });
}

/** Whether the client saw the whole answer: a JSON body with choices, or a stream to [DONE]. */
async function complete(res: Response, stream: boolean): Promise<boolean> {
  const text = await res.text();
  if (res.status !== 200) return false;
  if (stream) return text.includes('data: [DONE]');
  try {
    return Array.isArray((JSON.parse(text) as { choices?: unknown }).choices);
  } catch {
    return false;
  }
}

interface Load {
  /** Every request id sent, answered or not. */
  sent: string[];
  /** Ids of requests answered in full. */
  completed: Set<string>;
  /** Status of each request by id, with the error code of a refusal, or `error`. */
  outcomes: Map<string, number | string>;
  stop(): Promise<void>;
}

/** `workers` clients in a loop, every other request streamed, until `stop()`. */
function drive(url: () => string, key: string, tag: string, workers: number): Load {
  const load: Load = { sent: [], completed: new Set(), outcomes: new Map(), stop: async () => {} };
  let running = true;
  const worker = async (w: number) => {
    for (let n = 0; running; n++) {
      const id = `${tag}-${w}-${n}`;
      const stream = n % 2 === 1;
      load.sent.push(id);
      try {
        const res = await chat(url(), key, id, stream);
        if (res.status !== 200) {
          const code = ((await res.json()) as { code?: string }).code;
          load.outcomes.set(id, `${res.status} ${code}`);
          continue;
        }
        load.outcomes.set(id, res.status);
        if (await complete(res, stream)) load.completed.add(id);
      } catch {
        load.outcomes.set(id, 'error');
      }
    }
  };
  const all = Array.from({ length: workers }, (_, w) => worker(w));
  load.stop = async () => {
    running = false;
    await Promise.all(all);
  };
  return load;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Request ids of the stored events (one per event, so duplicates show). */
async function auditedIds(store: Store): Promise<string[]> {
  const exported = await cli(store, ['audit', 'export', '--format', 'jsonl']);
  assert.equal(exported.code, 0, exported.stderr);
  return exported.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { requestId: string }).requestId);
}

/** Polls the trail until `done` holds for the ids under `tag`, or `ms` pass; returns them. */
async function waitForEvents(
  store: Store,
  tag: string,
  done: (ids: string[]) => boolean,
  ms = 8000,
): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ids = (await auditedIds(store)).filter((id) => id.startsWith(`${tag}-`));
    if (done(ids) || Date.now() > deadline) return ids;
    await sleep(250);
  }
}

async function verify(store: Store): Promise<void> {
  const verified = await cli(store, ['audit', 'verify']);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /OK: every chain is intact/);
}

before(async () => {
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY], record: false });
});

after(async () => {
  for (const gateway of gateways) await gateway.stop('SIGKILL');
  await mock?.close();
});

for (const name of ['sqlite', 'postgres'] as const) {
  describe(`kill -9 under load on ${name}`, { skip: name === 'postgres' && NO_PG }, () => {
    test('every answer the client saw complete has its event after restart; the trail verifies', {
      timeout: 60_000,
    }, async (t) => {
      const store = await newStore(t, name);
      const { key } = await createKey(store);
      let gateway = await startGateway(store);
      const tag = `crash${randomBytes(3).toString('hex')}`;
      const load = drive(() => gateway.url, key, tag, 16);
      const start = Date.now();
      while (load.completed.size < 200 && Date.now() - start < 3000) await sleep(20);
      gateway.proc.kill('SIGKILL');
      await load.stop();
      await gateway.stop();
      const seen = [...load.completed];
      assert.ok(seen.length >= 50, `only ${seen.length} answers before the kill`);
      assert.ok(seen.length < load.sent.length, 'the kill interrupted nothing');
      const streamed = seen.filter((id) => Number(id.split('-').at(-1)) % 2 === 1).length;
      assert.ok(streamed > 0 && streamed < seen.length, 'both kinds of answer were seen whole');

      // The restart replays whatever a sink had spooled when the process died.
      gateway = await startGateway(store);
      const ids = await waitForEvents(store, tag, (got) => {
        const stored = new Set(got);
        return seen.every((id) => stored.has(id));
      });
      const stored = new Set(ids);
      const lost = seen.filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `${lost.length} of ${seen.length} completed answers unaudited`);
      assert.equal(ids.length, stored.size, 'an event was stored twice');
      await gateway.stop();
      await verify(store);
    });
  });
}

describe('PostgreSQL unreachable under load', { skip: NO_PG }, () => {
  // While the key store cannot be read the gateway refuses (503 store_unavailable) rather than
  // trust a key it can no longer check (a revocation might be missed): what must hold is that
  // every request is answered, every decision reaches the trail once PostgreSQL returns, and
  // service resumes.
  test('for 10 s every request is answered and spooled; all events land once it returns', {
    timeout: 60_000,
  }, async (t) => {
    const store = await newStore(t, 'postgres');
    const link = await relay(t, new URL(PG_URL!));
    const { key } = await createKey(store);
    const gateway = await startGateway(store, { MISTRAL_GUARD_DATABASE_URL: link.url });
    const tag = `outage${randomBytes(3).toString('hex')}`;
    const load = drive(() => gateway.url, key, tag, 8);
    await sleep(1500);
    const cutAt = load.sent.length;
    link.cut();
    await sleep(5000);
    const spool = join(store.dataDir, 'audit-spool', 'store.jsonl');
    const spooled = (await readFile(spool, 'utf8')).split('\n').filter(Boolean).length;
    const ready = await fetch(`${gateway.url}/readyz`);
    const readiness = await ready.text();
    await sleep(5000);
    const restoredAt = load.sent.length;
    link.restore();
    await sleep(2000);
    const recoveredAt = load.sent.length;
    await sleep(1000);
    await load.stop();

    const outcome = (id: string) => load.outcomes.get(id);
    const before = load.sent.slice(0, cutAt - 8);
    const during = load.sent.slice(cutAt, restoredAt);
    const recovered = load.sent.slice(recoveredAt);
    assert.ok(during.length > 100, `only ${during.length} requests during the outage`);
    assert.ok(spooled > 50, `${spooled} events in the spool 5 s into the outage`);
    assert.equal(ready.status, 503, `ready while its store is down: ${readiness}`);
    assert.deepEqual([...new Set(before.map(outcome))], [200], 'refused before the outage');
    const unanswered = during.filter((id) => outcome(id) === 'error');
    assert.equal(unanswered.length, 0, `${unanswered.length} requests got no answer`);
    // A refusal while the store is away is a 503 clients retry, never a 500.
    const refusals = new Set(during.map(outcome).filter((o) => o !== 200));
    assert.deepEqual(
      [...refusals].filter((o) => o !== '503 store_unavailable'),
      [],
      'refused with another status',
    );
    assert.deepEqual(
      [...new Set(recovered.map(outcome))],
      [200],
      'not served again 2 s after PostgreSQL returned',
    );

    const ids = await waitForEvents(store, tag, (got) => got.length >= load.sent.length, 15_000);
    const stored = new Set(ids);
    const missing = load.sent.filter((id) => !stored.has(id));
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} requests have no event`);
    assert.equal(ids.length, load.sent.length, 'the event count is not the request count');
    await gateway.stop();
    await verify(store);
  });
});

describe('two replicas on one PostgreSQL', { skip: NO_PG }, () => {
  async function replicas(t: TestContext) {
    const store = await newStore(t, 'postgres');
    const env = { MISTRAL_GUARD_ADMIN_TOKEN: ADMIN_TOKEN };
    const [a, b] = await Promise.all([startGateway(store, env), startGateway(store, env)]);
    t.after(async () => {
      await a.stop();
      await b.stop();
    });
    return { store, a, b };
  }

  async function status(gateway: Child, key: string): Promise<number | string> {
    const res = await chat(gateway.url, key, `rep-${randomBytes(4).toString('hex')}`, false);
    if (res.status === 200) {
      await res.arrayBuffer();
      return 200;
    }
    return ((await res.json()) as { code: string }).code;
  }

  test('a key revoked through the admin API of one is refused by the other at once', {
    timeout: 30_000,
  }, async (t) => {
    const { store, a, b } = await replicas(t);
    for (let round = 0; round < 5; round++) {
      const { id, key } = await createKey(store);
      assert.equal(await status(a, key), 200);
      assert.equal(await status(b, key), 200);
      const revoked = await fetch(`${a.url}/admin/keys/${id}/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      assert.equal(revoked.status, 200, await revoked.text());
      assert.equal(await status(b, key), 'revoked_api_key', `round ${round}`);
      assert.equal(await status(a, key), 'revoked_api_key');
    }
  });

  test('a key revoked by the CLI on the shared database is refused by both at once', {
    timeout: 30_000,
  }, async (t) => {
    const { store, a, b } = await replicas(t);
    const { id, key } = await createKey(store);
    assert.equal(await status(a, key), 200);
    assert.equal(await status(b, key), 200);
    const revoked = await cli(store, ['keys', 'revoke', id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(await status(a, key), 'revoked_api_key');
    assert.equal(await status(b, key), 'revoked_api_key');
  });
});
