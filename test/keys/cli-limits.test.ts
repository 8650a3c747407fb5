import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, type TestContext, test } from 'node:test';
import { createAuthenticator } from '../../src/keys/authenticator.js';
import { openSqliteKeyStore } from '../../src/keys/sqlite-store.js';
import { createLimiter } from '../../src/limits/limiter.js';
import { RedisLimitStore } from '../../src/limits/redis-store.js';
import { deletePrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../limits/helpers.js';
import { type CliResult, runCli } from '../support/processes.js';

// These tests run the compiled CLI (`npx tsc -p tsconfig.build.json`), as users do.

interface Sandbox {
  dataDir: string;
  /** Every output so far, for the canary checks. */
  outputs: string[];
  run(args: string[], env?: Record<string, string>): Promise<CliResult>;
}

function sandbox(t: TestContext, configYaml?: string): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'mg-keys-limits-'));
  const dataDir = join(root, 'data');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  if (configYaml !== undefined) writeFileSync(join(root, 'mistral-guard.yaml'), configYaml);
  const outputs: string[] = [];
  return {
    dataDir,
    outputs,
    async run(args, env = {}) {
      // An empty working directory and a bare environment: a developer's .env or
      // mistral-guard.yaml must not change what the test sees.
      const result = await runCli([...args, '--data-dir', dataDir], { cwd: root, env });
      outputs.push(result.stdout, result.stderr);
      return result;
    },
  };
}

async function json(box: Sandbox, args: string[], env?: Record<string, string>) {
  const result = await box.run([...args, '--json'], env);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

const NO_LIMITS = {
  rpm: null,
  tpm: null,
  concurrency: null,
  dailyTokens: null,
  monthlyTokens: null,
};

test('keys create stores each limit flag and shows the limits in force', async (t) => {
  const box = sandbox(t);
  const created = await json(box, [
    'keys',
    'create',
    '--name',
    'limited',
    '--rpm',
    '30',
    '--tpm',
    '9000',
    '--concurrency',
    '2',
    '--daily-tokens',
    '50000',
    '--monthly-tokens',
    '1000000',
  ]);
  const own = { rpm: 30, tpm: 9000, concurrency: 2, dailyTokens: 50_000, monthlyTokens: 1e6 };
  assert.deepEqual(created.limits, own);
  assert.deepEqual(created.effectiveLimits, own);

  const plain = await json(box, ['keys', 'create', '--name', 'plain']);
  assert.deepEqual(plain.limits, NO_LIMITS);
  // The development profile's limits.
  assert.deepEqual(plain.effectiveLimits, {
    rpm: 120,
    tpm: 500_000,
    concurrency: 8,
    dailyTokens: 1_000_000,
    monthlyTokens: null,
  });
});

test('a key limit above its profile is kept but the profile applies, and the CLI says so', async (t) => {
  const box = sandbox(t);
  const result = await box.run(['keys', 'create', '--name', 'greedy', '--rpm', '100000', '--json']);
  assert.equal(result.code, 0, result.stderr);
  const created = JSON.parse(result.stdout) as {
    id: string;
    limits: { rpm: number };
    effectiveLimits: { rpm: number };
  };
  assert.equal(created.limits.rpm, 100_000);
  assert.equal(created.effectiveLimits.rpm, 120);
  assert.match(result.stderr, /note: --rpm is above the development profile's 120/);

  const shown = await box.run(['keys', 'show', created.id]);
  assert.match(shown.stdout, /rpm: +120 \(profile; the key's 100000 is higher\)/);
  assert.match(shown.stdout, /monthly tokens: +none/);
});

test('a bad limit flag exits with 2 and a message naming the flag, not the value', async (t) => {
  const box = sandbox(t);
  const cases: Array<[string, string, RegExp]> = [
    ['--rpm', '0', /--rpm must be a positive integer$/m],
    ['--tpm', 'sk-pasted-secret-1', /--tpm must be a positive integer$/m],
    ['--concurrency', '1.5', /--concurrency must be a positive integer$/m],
    ['--daily-tokens', '1e6', /--daily-tokens must be a positive integer$/m],
    ['--monthly-tokens', '99999999999999999999', /--monthly-tokens must be a positive integer$/m],
    ['--rpm', 'default', /--rpm must be a positive integer$/m],
  ];
  for (const [flag, value, message] of cases) {
    const result = await box.run(['keys', 'create', '--name', 'x', flag, value]);
    assert.equal(result.code, 2, `${flag} ${value}`);
    assert.match(result.stderr, message);
    assert.ok(!result.stderr.includes('pasted') && !result.stderr.includes('    at '));
  }
  const missing = await box.run(['keys', 'create', '--name', 'x', '--rpm']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--rpm/);
  assert.equal((await box.run(['keys', 'list', '--json'])).stdout.trim(), '[]');
});

test('keys create --models takes prefixes ending in * and * alone, as profiles do', async (t) => {
  const box = sandbox(t);
  const created = await json(box, [
    'keys',
    'create',
    '--name',
    'wild',
    '--models',
    'mistral-small-*,codestral-latest',
  ]);
  assert.deepEqual(created.models, ['mistral-small-*', 'codestral-latest']);
  const any = await json(box, ['keys', 'create', '--name', 'any', '--models', '*']);
  assert.deepEqual(any.models, ['*']);
  for (const bad of ['mis*tral', '**', '*-latest', 'mistral-**']) {
    const result = await box.run(['keys', 'create', '--name', 'x', '--models', bad]);
    assert.equal(result.code, 2, bad);
    assert.match(result.stderr, /--models must be model names/);
  }
});

test('keys update changes only the flags given, and "default" clears back to the profile', async (t) => {
  const box = sandbox(t);
  const created = await json(box, [
    'keys',
    'create',
    '--name',
    'app',
    '--rpm',
    '30',
    '--tpm',
    '9000',
    '--models',
    'mistral-*',
    '--max-tokens',
    '100',
  ]);
  const id = created.id as string;
  const updated = await json(box, ['keys', 'update', id, '--rpm', '10', '--daily-tokens', '500']);
  assert.deepEqual(updated.limits, { ...NO_LIMITS, rpm: 10, tpm: 9000, dailyTokens: 500 });
  assert.deepEqual(updated.models, ['mistral-*']);
  assert.equal(updated.maxTokens, 100);

  const cleared = await json(box, [
    'keys',
    'update',
    id,
    '--tpm',
    'default',
    '--models',
    'default',
    '--max-tokens',
    'default',
    '--name',
    'renamed',
  ]);
  assert.deepEqual(cleared.limits, { ...NO_LIMITS, rpm: 10, dailyTokens: 500 });
  assert.equal(cleared.models, null);
  assert.equal(cleared.maxTokens, null);
  assert.equal(cleared.name, 'renamed');
  assert.equal((cleared.effectiveLimits as Record<string, number>).tpm, 500_000);

  const text = await box.run(['keys', 'update', id, '--concurrency', '3']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /concurrency: +3 \(key\)/);
  assert.match(text.stderr, /running gateways apply it from their next request/);
});

test('keys update refuses bad input with exit 2 and an unknown key with exit 1', async (t) => {
  const box = sandbox(t);
  const { id } = (await json(box, ['keys', 'create', '--name', 'app'])) as { id: string };
  const cases: Array<[string[], number, RegExp]> = [
    [[id], 2, /nothing to change: give at least one of --name, --models, --max-tokens, --rpm/],
    [[id, '--rpm', 'none'], 2, /--rpm must be a positive integer, or "default" for the profile's/],
    [[id, '--monthly-tokens', '0'], 2, /--monthly-tokens must be a positive integer, or "default"/],
    [[id, '--max-tokens', 'sk-pasted-1'], 2, /--max-tokens must be a positive integer, or "def/],
    [[id, '--models', 'sk pasted 1'], 2, /--models must be model names/],
    [[id, '--name', ''], 2, /--name must be 1 to 100 characters/],
    [['key_0000000000000000', '--rpm', '5'], 1, /no virtual key with id key_0000000000000000/],
    [['not-an-id', '--rpm', '5'], 2, /ID must be "key_" followed by 16 letters or digits/],
  ];
  for (const [args, code, message] of cases) {
    const result = await box.run(['keys', 'update', ...args]);
    assert.equal(result.code, code, args.join(' '));
    assert.match(result.stderr, message);
    assert.ok(!result.stderr.includes('pasted') && !result.stderr.includes('    at '));
  }
  const unchanged = await json(box, ['keys', 'show', id]);
  assert.deepEqual(unchanged.limits, NO_LIMITS);
  assert.equal(unchanged.name, 'app');
});

test('a limit changed by keys update reaches a running authenticator at once', async (t) => {
  const box = sandbox(t);
  const created = await json(box, ['keys', 'create', '--name', 'live', '--rpm', '50']);
  const store = openSqliteKeyStore(box.dataDir);
  t.after(() => store.close());
  const auth = createAuthenticator({ store, changes: store.changes() });
  const header = `Bearer ${created.key as string}`;
  assert.equal((await auth.authenticate(header)).limits.rpm, 50);
  assert.equal((await auth.authenticate(header)).limits.rpm, 50);

  const result = await box.run(['keys', 'update', created.id as string, '--rpm', '5']);
  assert.equal(result.code, 0, result.stderr);
  const record = await auth.authenticate(header);
  assert.equal(record.limits.rpm, 5);
});

test('keys list shows each key with its own limits', async (t) => {
  const box = sandbox(t);
  const limited = await json(box, ['keys', 'create', '--name', 'a', '--rpm', '7', '--tpm', '70']);
  const plain = await json(box, ['keys', 'create', '--name', 'b']);
  const text = (await box.run(['keys', 'list'])).stdout.split('\n');
  assert.match(text[0]!, /LIMITS$/);
  assert.match(text.find((l) => l.startsWith(limited.id as string))!, /rpm 7, tpm 70$/);
  assert.match(text.find((l) => l.startsWith(plain.id as string))!, /profile's$/);
  const listed = JSON.parse((await box.run(['keys', 'list', '--json'])).stdout) as Array<{
    limits: unknown;
  }>;
  assert.deepEqual(listed[0]?.limits, { ...NO_LIMITS, rpm: 7, tpm: 70 });
});

test('keys usage with in-memory limits says the counters are out of reach, with exit 1', async (t) => {
  const box = sandbox(t);
  const { id } = (await json(box, ['keys', 'create', '--name', 'app'])) as { id: string };
  const text = await box.run(['keys', 'usage', id]);
  assert.equal(text.code, 1);
  assert.equal(text.stdout, '');
  assert.match(text.stderr, /keys usage needs limits\.redisUrl \(or MISTRAL_GUARD_REDIS_URL\)/);
  assert.match(text.stderr, /in-memory limits backend/);
  const asJson = await box.run(['keys', 'usage', id, '--json']);
  assert.equal(asJson.code, 1);
  assert.deepEqual(JSON.parse(asJson.stdout), { id, backend: 'memory', usage: null });

  assert.equal((await box.run(['keys', 'usage', 'key_0000000000000000'])).code, 1);
  assert.equal((await box.run(['keys', 'usage', 'nope'])).code, 2);
});

test('keys usage with an unreachable Redis exits with 2 and never shows the URL', async (t) => {
  const box = sandbox(t);
  const { id } = (await json(box, ['keys', 'create', '--name', 'app'])) as { id: string };
  const env = { MISTRAL_GUARD_REDIS_URL: 'redis://default:pw-0ff1ce@127.0.0.1:1' };
  const result = await box.run(['keys', 'usage', id], env);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /cannot reach the Redis of limits\.redisUrl/);
  assert.ok(!`${result.stdout}${result.stderr}`.includes('pw-0ff1ce'));
});

const prefix = uniquePrefix();
const reachable = await redisAvailable();
after(() => (reachable ? deletePrefix(prefix) : undefined));

describe('keys usage against the shared Redis', { skip: reachable ? false : `no Redis` }, () => {
  test('shows the requests, tokens, slots and budgets the gateways counted', async (t) => {
    const box = sandbox(t, `limits:\n  prefix: "${prefix}"\n`);
    const env = { MISTRAL_GUARD_REDIS_URL: REDIS_URL };
    const created = await json(box, [
      'keys',
      'create',
      '--name',
      'metered',
      '--rpm',
      '10',
      '--daily-tokens',
      '1000',
    ]);
    const id = created.id as string;
    // Counted in one minute, read in the same: stay clear of the edge of the window.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((r) => setTimeout(r, 60_500 - intoMinute));

    const store = new RedisLimitStore({ url: REDIS_URL, prefix });
    await store.ready();
    const limiter = createLimiter({ store });
    t.after(() => limiter.close());
    const key = { id, environment: 'development', limits: { rpm: 10, dailyTokens: 1000 } };
    const first = await limiter.reserve(key, 100);
    const second = await limiter.reserve(key, 200);
    assert.ok(first.allowed && second.allowed);
    await limiter.settle(first.reservation, 40);

    const usage = await json(box, ['keys', 'usage', id], env);
    assert.equal(usage.backend, 'redis');
    assert.deepEqual(usage.limits, {
      rpm: 10,
      tpm: 500_000,
      concurrency: 8,
      dailyTokens: 1000,
      monthlyTokens: null,
    });
    assert.equal(usage.requestsMinute, 2);
    assert.equal(usage.tokensMinute, 240);
    assert.equal(usage.inFlight, 1);
    assert.equal(usage.tokensDay, 240);
    assert.equal(usage.tokensMonth, 240);
    assert.deepEqual(usage.remaining, {
      requestsMinute: 8,
      tokensMinute: 499_760,
      concurrency: 7,
      tokensDay: 760,
      tokensMonth: null,
    });

    const text = await box.run(['keys', 'usage', id], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /requests\/min: +2 of 10 \(8 left\)/);
    assert.match(text.stdout, /tokens today: +240 of 1000 \(760 left\)/);
    assert.match(text.stdout, /tokens month: +240 \(no limit\)/);
    assert.ok(
      !box.outputs
        .slice(2)
        .join('\n')
        .includes(created.key as string),
    );
  });
});
