import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';

// Limits through real gateway processes: shared Redis on 127.0.0.1:6379 for the cross-replica
// cases, and a Redis server of the test's own (on a free port) for the outage, so stopping it
// disturbs nothing else.
const UPSTREAM_KEY = canaryUpstreamKey();
const SHARED_REDIS = 'redis://127.0.0.1:6379';
const PREFIX = `mg-test-${randomBytes(4).toString('hex')}:`;

let mock: MockMistral;
let dir: string;
let dataDir: string;
const gateways: Child[] = [];

async function cli(args: string[]) {
  return runCli([...args, '--data-dir', dataDir], {
    cwd: dir,
    env: { MISTRAL_GUARD_REDIS_URL: SHARED_REDIS },
  });
}

async function createKey(args: string[]): Promise<{ id: string; key: string }> {
  const created = await cli(['keys', 'create', '--name', 'limits', '--json', ...args]);
  assert.equal(created.code, 0, created.stderr);
  return JSON.parse(created.stdout);
}

async function startGateway(env: Record<string, string> = {}): Promise<Child> {
  const gateway = await startGatewayProcess({
    dataDir,
    upstreamUrl: mock.url,
    cwd: dir,
    env: {
      MISTRAL_API_KEY: UPSTREAM_KEY,
      MISTRAL_GUARD_ENV: 'development',
      MISTRAL_GUARD_REDIS_URL: SHARED_REDIS,
      ...env,
    },
  });
  gateways.push(gateway);
  return gateway;
}

function chat(gateway: Child, key: string, content = 'hello', extra: Record<string, unknown> = {}) {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content }],
      max_tokens: 50,
      ...extra,
    }),
  });
}

async function codeOf(res: Response): Promise<string | null> {
  if (res.status === 200) {
    await res.arrayBuffer();
    return null;
  }
  return ((await res.json()) as { code: string }).code;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mg-limits-'));
  dataDir = join(dir, 'data');
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
  // The profile leaves rates open, so each test's key sets exactly the limit it tests.
  await writeFile(
    join(dir, 'mistral-guard.yaml'),
    [
      'environments: [development, production]',
      // One loopback upstream key serves both environments here.
      'upstreamKey: { requireSeparateKeys: false }',
      'limits:',
      `  prefix: '${PREFIX}'`,
      'profiles:',
      '  development:',
      '    limits: { rpm: null, tpm: null, concurrency: null, dailyTokens: null, onOutage: allow }',
      '  production:',
      '    limits: { rpm: null, tpm: null, concurrency: null, onOutage: refuse }',
      '',
    ].join('\n'),
  );
});

after(async () => {
  for (const gateway of gateways) await gateway.stop();
  await mock?.close();
  const redis = new Redis(SHARED_REDIS);
  const keys = await redis.keys(`${PREFIX}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

describe('shared limits across replicas', () => {
  let a: Child;
  let b: Child;
  before(async () => {
    [a, b] = await Promise.all([startGateway(), startGateway()]);
  });

  test('two replicas on one Redis let exactly N of 3N concurrent requests through', async () => {
    const n = 5;
    const { key } = await createKey(['--rpm', String(n)]);
    const results = await Promise.all(
      Array.from({ length: 3 * n }, (_, i) => chat(i % 2 ? a : b, key)),
    );
    const codes = await Promise.all(results.map(codeOf));
    assert.equal(codes.filter((c) => c === null).length, n, `codes: ${codes.join(',')}`);
    assert.equal(codes.filter((c) => c === 'rate_limited').length, 2 * n);
    const refused = results.find((r) => r.status === 429)!;
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.equal(refused.headers.get('x-ratelimit-limit-req-minute'), String(n));
    assert.equal(refused.headers.get('x-ratelimit-remaining-req-minute'), '0');
  });

  test('answers carry the key’s rate headers, and keys usage reads the shared counters', async () => {
    const { id, key } = await createKey([
      '--rpm',
      '100',
      '--tpm',
      '100000',
      '--monthly-tokens',
      '900000',
    ]);
    const res = await chat(a, key);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-ratelimit-limit-req-minute'), '100');
    assert.equal(res.headers.get('x-ratelimit-remaining-req-minute'), '99');
    assert.equal(res.headers.get('x-ratelimit-limit-tokens-minute'), '100000');
    assert.equal(res.headers.get('x-ratelimit-limit-tokens-month'), '900000');
    const usage = (await res.json()) as { usage: { total_tokens: number } };
    await chat(b, key).then((r) => r.arrayBuffer());
    const shown = await cli(['keys', 'usage', id, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    const figures = JSON.parse(shown.stdout);
    assert.equal(figures.requestsMinute, 2);
    assert.equal(figures.tokensMonth, usage.usage.total_tokens * 2);
  });

  test('keys update takes effect at once on running replicas', async () => {
    const { id, key } = await createKey(['--rpm', '1']);
    assert.equal(await codeOf(await chat(a, key)), null);
    assert.equal(await codeOf(await chat(b, key)), 'rate_limited');
    const updated = await cli(['keys', 'update', id, '--rpm', '50']);
    assert.equal(updated.code, 0, updated.stderr);
    assert.equal(await codeOf(await chat(b, key)), null);
    assert.equal(await codeOf(await chat(a, key)), null);
  });

  test('a budget race overdraws by at most one reservation, and settles to the real usage', async () => {
    // Each request reserves its prompt estimate plus max_tokens 50; the budget fits ten.
    const probe = await createKey([]);
    const one = (await (await chat(a, probe.key)).json()) as { usage: { total_tokens: number } };
    const reservation = 2 + 50;
    const budget = 10 * reservation;
    const { id, key } = await createKey(['--daily-tokens', String(budget)]);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => chat(i % 2 ? a : b, key, 'hello', { stream: true })),
    );
    let used = 0;
    let passed = 0;
    for (const res of results) {
      if (res.status !== 200) {
        assert.equal(await codeOf(res), 'budget_exhausted');
        continue;
      }
      passed++;
      const text = await res.text();
      const last = text
        .split('\n')
        .filter((l) => l.startsWith('data: {') && l.includes('"usage":{'))
        .at(-1)!;
      used += JSON.parse(last.slice(6)).usage.total_tokens;
    }
    assert.ok(passed >= 10, `only ${passed} passed`);
    assert.ok(one.usage.total_tokens < reservation, 'each request uses less than it reserves');
    // Settlements run as streams close; give the last ones a moment to land.
    let day = -1;
    for (let i = 0; i < 20 && day !== used; i++) {
      await new Promise((r) => setTimeout(r, 100));
      day = JSON.parse((await cli(['keys', 'usage', id, '--json'])).stdout).tokensDay;
    }
    assert.equal(day, used, 'the settled total is not the upstream’s usage');
    assert.ok(day <= budget + reservation, `overdrawn: ${day} of ${budget}`);
  });

  test('a concurrency slot frees when a stream ends and when the client leaves mid-stream', async () => {
    const { key } = await createKey(['--concurrency', '1']);
    // A finished stream gives its slot back.
    const first = await chat(a, key, 'hello', { stream: true });
    await first.text();
    await new Promise((r) => setTimeout(r, 50));
    const second = await chat(b, key, 'hello', { stream: true });
    assert.equal(second.status, 200);
    await second.text();
    await new Promise((r) => setTimeout(r, 50));

    // A stalled stream holds the slot until its client leaves.
    const controller = new AbortController();
    const stalled = await fetch(`${a.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'mistral-small-latest',
        messages: [{ role: 'user', content: '[[fault:stream-stall]]' }],
        stream: true,
      }),
      signal: controller.signal,
    });
    assert.equal(stalled.status, 200);
    const reader = stalled.body!.getReader();
    await reader.read();
    assert.equal(await codeOf(await chat(b, key)), 'too_many_concurrent');
    controller.abort();
    await reader.read().catch(() => null);
    let code: string | null = 'too_many_concurrent';
    for (let i = 0; i < 20 && code === 'too_many_concurrent'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      code = await codeOf(await chat(b, key));
    }
    assert.equal(code, null);
  });

  test('an upstream 429 reaches the client with its Retry-After and is recorded', async () => {
    const { key } = await createKey([]);
    const res = await chat(a, key, '[[fault:429:7]]');
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '7');
    const requestId = res.headers.get('x-request-id');
    await res.arrayBuffer();
    const tail = await cli(['audit', 'tail', '-n', '20', '--json']);
    const event = tail.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.requestId === requestId);
    assert.equal(event?.upstreamStatus, 429);
    assert.equal(event?.status, 429);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function startRedis(port: number): Promise<ChildProcess> {
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('Ready to accept connections')) resolve(proc);
    });
    proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
  });
}

describe('a Redis outage', () => {
  test('follows each profile’s rule while Redis is away, and limits hold again when it returns', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    let redis = await startRedis(port);
    const gateway = await startGateway({ MISTRAL_GUARD_REDIS_URL: url });
    const dev = await createKey(['--rpm', '2']);
    const prod = await createKey(['--env', 'production', '--rpm', '100']);
    assert.equal(await codeOf(await chat(gateway, dev.key)), null);
    assert.equal(await codeOf(await chat(gateway, prod.key)), null);

    redis.kill('SIGKILL');
    await new Promise((r) => redis.once('exit', r));
    // Development allows while the store is away (uncounted); production refuses with 503.
    const during = await chat(gateway, dev.key);
    assert.equal(during.status, 200);
    await during.arrayBuffer();
    const refused = await chat(gateway, prod.key);
    assert.equal(refused.status, 503);
    assert.equal(await codeOf(refused), 'not_ready');
    const ready = await fetch(`${gateway.url}/readyz`);
    assert.equal(ready.status, 503);
    const checks = ((await ready.json()) as { checks: Record<string, { ok: boolean }> }).checks;
    assert.equal(checks.limits!.ok, false);

    redis = await startRedis(port);
    try {
      let status = 503;
      for (let i = 0; i < 50 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const res = await chat(gateway, prod.key);
        status = res.status;
        await res.arrayBuffer();
      }
      assert.equal(status, 200, 'production never recovered');
      assert.equal((await fetch(`${gateway.url}/readyz`)).status, 200);
      // The fresh Redis has no counts: the development key's limit of 2 holds again.
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push(await codeOf(await chat(gateway, dev.key)));
      assert.deepEqual(codes, [null, null, 'rate_limited']);
    } finally {
      redis.kill('SIGKILL');
    }
  });
});
