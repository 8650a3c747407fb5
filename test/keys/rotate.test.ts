import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import { parseGrace } from '../../src/cli/keys-flags.js';
import { isGuardError } from '../../src/errors.js';
import { createAuthenticator } from '../../src/keys/authenticator.js';
import { DEFAULT_GRACE_MS, rotateVirtualKey } from '../../src/keys/rotate.js';
import { openSqliteKeyStore } from '../../src/keys/sqlite-store.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';

const HOUR_MS = 3_600_000;

function storeIn(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'mg-rotate-'));
  const store = openSqliteKeyStore(dir);
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

function refusal(error: unknown, code: string): boolean {
  return isGuardError(error) && error.code === code;
}

describe('rotateVirtualKey', () => {
  test('issues a key with the same policy and marks the old one with its grace', async (t) => {
    const store = storeIn(t);
    const created = await store.create({
      name: 'billing',
      environment: 'staging',
      models: ['mistral-small-latest'],
      maxTokens: 512,
      expiresAt: '2030-01-01T00:00:00.000Z',
      limits: { rpm: 30, dailyTokens: 10_000 },
      metadata: { owner: 'team-a' },
    });
    const now = new Date('2027-03-01T10:00:00.000Z');
    const { previous, record, key } = await rotateVirtualKey(store, created.record.id, {
      graceMs: 2 * HOUR_MS,
      now,
    });

    assert.notEqual(record.id, created.record.id);
    assert.notEqual(key, created.key);
    const lifecycle = ['id', 'hash', 'createdAt', 'revokedAt', 'rotatedAt', 'replacedBy'];
    for (const [field, value] of Object.entries(created.record)) {
      if (lifecycle.includes(field) || field === 'graceUntil') continue;
      assert.deepEqual(record[field as keyof typeof record], value, field);
    }
    assert.deepEqual(record.limits, created.record.limits);
    assert.deepEqual(record.metadata, { owner: 'team-a' });
    assert.equal(record.replacedBy, null);
    assert.equal(previous.rotatedAt, now.toISOString());
    assert.equal(previous.replacedBy, record.id);
    assert.equal(previous.graceUntil, '2027-03-01T12:00:00.000Z');
  });

  test('the old key works until its grace ends, then is refused as rotated', async (t) => {
    const store = storeIn(t);
    const auth = createAuthenticator({ store });
    const created = await store.create({ name: 'app', environment: 'development' });
    const now = new Date('2027-03-01T10:00:00.000Z');
    const { key } = await rotateVirtualKey(store, created.record.id, { graceMs: HOUR_MS, now });
    auth.clear();

    const during = new Date(now.getTime() + HOUR_MS - 1);
    const after = new Date(now.getTime() + HOUR_MS);
    assert.equal((await auth.authenticate(`Bearer ${created.key}`, during)).id, created.record.id);
    await assert.rejects(auth.authenticate(`Bearer ${created.key}`, after), (e) =>
      refusal(e, 'rotated_api_key'),
    );
    assert.ok(await auth.authenticate(`Bearer ${key}`, after));
  });

  test('a grace of 0 ends the old key at once; the default grace is a day', async (t) => {
    const store = storeIn(t);
    const auth = createAuthenticator({ store });
    const now = new Date();
    const first = await store.create({ name: 'a', environment: 'development' });
    await rotateVirtualKey(store, first.record.id, { graceMs: 0, now });
    await assert.rejects(auth.authenticate(`Bearer ${first.key}`), (e) =>
      refusal(e, 'rotated_api_key'),
    );

    const second = await store.create({ name: 'b', environment: 'development' });
    const { previous } = await rotateVirtualKey(store, second.record.id, { now });
    assert.equal(Date.parse(previous.graceUntil!) - now.getTime(), DEFAULT_GRACE_MS);
  });

  test('refuses unknown, revoked and already rotated keys, and a grace out of range', async (t) => {
    const store = storeIn(t);
    await assert.rejects(rotateVirtualKey(store, 'key_0000000000000000'), (e) =>
      refusal(e, 'not_found'),
    );
    const revoked = await store.create({ name: 'r', environment: 'development' });
    await store.revoke(revoked.record.id);
    await assert.rejects(rotateVirtualKey(store, revoked.record.id), (e) =>
      refusal(e, 'invalid_request'),
    );
    const rotated = await store.create({ name: 'o', environment: 'development' });
    await rotateVirtualKey(store, rotated.record.id);
    await assert.rejects(rotateVirtualKey(store, rotated.record.id), (e) =>
      refusal(e, 'invalid_request'),
    );
    await assert.rejects(rotateVirtualKey(store, rotated.record.id, { graceMs: -1 }), (e) =>
      refusal(e, 'invalid_request'),
    );
    assert.equal((await store.list({ includeRevoked: true })).length, 3, 'no key for a refusal');
  });
});

describe('--grace', () => {
  test('takes 0 and durations, refuses bare numbers and more than a year', () => {
    assert.equal(parseGrace(undefined, DEFAULT_GRACE_MS), DEFAULT_GRACE_MS);
    assert.equal(parseGrace('0', DEFAULT_GRACE_MS), 0);
    assert.equal(parseGrace('2s', 0), 2000);
    assert.equal(parseGrace('15m', 0), 15 * 60_000);
    assert.equal(parseGrace('24h', 0), 24 * HOUR_MS);
    assert.equal(parseGrace('7d', 0), 7 * 24 * HOUR_MS);
    for (const bad of ['3', '-1h', '1w', '366d', 'soon', '']) {
      assert.throws(() => parseGrace(bad, 0), /--grace must be/, bad);
    }
  });
});

// Through a running gateway: `keys rotate` on the command line and the admin API, each with a
// short grace, and the old key refused as rotated once it ends.
describe('virtual key rotation through a running gateway', () => {
  const upstreamKey = canaryUpstreamKey();
  const adminToken = `admin-${randomBytes(24).toString('base64url')}`;
  let mock: MockMistral;
  let dir: string;
  let dataDir: string;
  let gateway: Child;

  const chat = async (key: string) => {
    const res = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'mistral-small-latest',
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    const body = (await res.json()) as { code?: string };
    return { status: res.status, code: body.code };
  };
  const cli = (...args: string[]) => runCli([...args, '--data-dir', dataDir], { cwd: dir });
  const createKey = async (name: string) => {
    const created = await cli('keys', 'create', '--name', name, '--rpm', '100', '--json');
    assert.equal(created.code, 0, created.stderr);
    return JSON.parse(created.stdout) as { id: string; key: string };
  };
  const waitUntil = (iso: string) =>
    new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(iso) - Date.now() + 50)));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mg-rotate-gw-'));
    dataDir = join(dir, 'data');
    mock = await startMockMistral({ validKeys: [upstreamKey] });
    gateway = await startGatewayProcess({
      dataDir,
      upstreamUrl: mock.url,
      cwd: dir,
      env: {
        MISTRAL_API_KEY: upstreamKey,
        MISTRAL_GUARD_ENV: 'development',
        MISTRAL_GUARD_ADMIN_TOKEN: adminToken,
      },
    });
  });

  after(async () => {
    await gateway?.stop();
    await mock?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('keys rotate --grace 2s: both keys work, then the old one is refused as rotated', async () => {
    const old = await createKey('cli-app');
    assert.equal((await chat(old.key)).status, 200);

    const rotated = await cli('keys', 'rotate', old.id, '--grace', '2s', '--json');
    assert.equal(rotated.code, 0, rotated.stderr);
    const result = JSON.parse(rotated.stdout) as {
      id: string;
      key: string;
      limits: { rpm: number };
      previous: { id: string; status: string; replacedBy: string; graceUntil: string };
    };
    assert.equal(result.limits.rpm, 100);
    assert.equal(result.previous.id, old.id);
    assert.equal(result.previous.replacedBy, result.id);
    assert.equal(result.previous.status, 'active');

    assert.equal((await chat(old.key)).status, 200, 'the old key works during the grace');
    assert.equal((await chat(result.key)).status, 200);
    await waitUntil(result.previous.graceUntil);
    assert.deepEqual(await chat(old.key), { status: 401, code: 'rotated_api_key' });
    assert.equal((await chat(result.key)).status, 200);

    const shown = await cli('keys', 'show', old.id, '--json');
    assert.equal((JSON.parse(shown.stdout) as { status: string }).status, 'rotated');
    assert.ok(!shown.stdout.includes(result.key) && !shown.stdout.includes(old.key));
  });

  test('keys rotate --grace 0 refuses the old key at once', async () => {
    const old = await createKey('cli-now');
    const rotated = await cli('keys', 'rotate', old.id, '--grace', '0');
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stderr, /refused from now on/);
    assert.deepEqual(await chat(old.key), { status: 401, code: 'rotated_api_key' });
  });

  test('POST /admin/keys/{id}/rotate with graceSeconds, audited', async () => {
    const old = await createKey('admin-app');
    const rotate = (id: string, body: unknown) =>
      fetch(`${gateway.url}/admin/keys/${id}/rotate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });

    const bad = await rotate(old.id, { graceSeconds: -5 });
    assert.equal(bad.status, 400);
    const res = await rotate(old.id, { graceSeconds: 2 });
    assert.equal(res.status, 201);
    const result = (await res.json()) as {
      id: string;
      key: string;
      hash?: string;
      previous: { id: string; graceUntil: string; replacedBy: string; hash?: string };
    };
    assert.equal(result.previous.replacedBy, result.id);
    assert.ok(result.hash === undefined && result.previous.hash === undefined);
    assert.equal((await rotate(old.id, {})).status, 400, 'a rotated key is not rotated again');

    assert.equal((await chat(old.key)).status, 200);
    await waitUntil(result.previous.graceUntil);
    assert.deepEqual(await chat(old.key), { status: 401, code: 'rotated_api_key' });
    assert.equal((await chat(result.key)).status, 200);

    const tail = await cli('audit', 'tail', '-n', '100', '--json');
    const events = tail.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { action: string; status: number; keyId: string | null });
    const rotations = events.filter((e) => e.action === 'admin.key.rotate');
    assert.ok(rotations.some((e) => e.status === 201 && e.keyId === old.id));
    assert.ok(rotations.some((e) => e.status === 400));
    assert.ok(
      rotations.length >= 4,
      'the command-line rotations are audited too, as admin.key.rotate',
    );
    for (const text of [...gateway.stdout, ...gateway.stderr, tail.stdout]) {
      assert.ok(!text.includes(result.key) && !text.includes(old.key), 'a key was written out');
    }
  });
});
