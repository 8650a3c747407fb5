import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isGuardError } from '../../src/errors.js';
import { createAuthenticator, keyFingerprint } from '../../src/keys/authenticator.js';
import { generateVirtualKey, hashVirtualKey } from '../../src/keys/format.js';
import { openSqliteKeyStore, type SqliteKeyStore } from '../../src/keys/sqlite-store.js';
import type { KeyStore } from '../../src/keys/types.js';
import { openSqlite, SQLITE_FILE } from '../../src/store/sqlite.js';

const NOW = new Date('2026-06-01T12:00:00.000Z');

/** A store that counts hash lookups, to see which answers came from the cache. */
function counting(store: KeyStore): { store: KeyStore; lookups: () => number } {
  let lookups = 0;
  const wrapped: KeyStore = {
    create: (input) => store.create(input),
    findByHash: (hash) => {
      lookups++;
      return store.findByHash(hash);
    },
    get: (id) => store.get(id),
    list: (options) => store.list(options),
    revoke: (id, now) => store.revoke(id, now),
    update: (id, patch) => store.update(id, patch),
    close: () => store.close(),
  };
  return { store: wrapped, lookups: () => lookups };
}

function setup(t: TestContext, options: { withFeed?: boolean; negativeCacheSize?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mg-keys-auth-'));
  const gateway = openSqliteKeyStore(dir);
  // A second connection stands for the CLI: SQLite tells connections apart, not processes.
  const cli = openSqliteKeyStore(dir);
  t.after(async () => {
    await gateway.close();
    await cli.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const counted = counting(gateway);
  const auth = createAuthenticator({
    store: counted.store,
    changes: options.withFeed === false ? undefined : gateway.changes(),
    negativeCacheSize: options.negativeCacheSize,
  });
  return { dir, gateway, cli, auth, lookups: counted.lookups };
}

async function refusal(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail('expected the key to be refused');
}

async function create(store: SqliteKeyStore, fields: { expiresAt?: string } = {}) {
  return store.create({ name: 'app', environment: 'development', now: NOW, ...fields });
}

test('a request without a bearer key is refused with missing_api_key', async (t) => {
  const { auth, lookups } = setup(t);
  for (const header of [undefined, '', 'Bearer', 'Bearer   ', 'Basic dXNlcjpwYXNz', 'Token x']) {
    const error = await refusal(auth.authenticate(header, NOW));
    assert.ok(isGuardError(error, 'missing_api_key'), String(header));
  }
  assert.equal(lookups(), 0);
});

test('a malformed key is refused with invalid_api_key without a store lookup', async (t) => {
  const { auth, lookups } = setup(t);
  const key = generateVirtualKey();
  const typo = `${key.slice(0, 20)}${key[20] === 'a' ? 'b' : 'a'}${key.slice(21)}`;
  for (const token of ['nope', 'Xq7dK2pLm9Rt4vWz8bNc3fGh6jYs1aEu', typo, `${key} extra`]) {
    const error = await refusal(auth.authenticate(`Bearer ${token}`, NOW));
    assert.ok(isGuardError(error, 'invalid_api_key'));
  }
  assert.equal(lookups(), 0);
});

test('a well-formed unknown key is refused, and asked about only once', async (t) => {
  const { auth, lookups } = setup(t);
  const key = generateVirtualKey();
  for (let i = 0; i < 5; i++) {
    const error = await refusal(auth.authenticate(`Bearer ${key}`, NOW));
    assert.ok(isGuardError(error, 'invalid_api_key'));
  }
  assert.equal(lookups(), 1);
});

test('the cache of unknown keys is bounded and forgets the oldest first', async (t) => {
  const { auth, lookups } = setup(t, { negativeCacheSize: 2 });
  const [a, b, c] = [generateVirtualKey(), generateVirtualKey(), generateVirtualKey()];
  for (const key of [a, b, c, c, b]) await refusal(auth.authenticate(`Bearer ${key}`, NOW));
  assert.equal(lookups(), 3);
  await refusal(auth.authenticate(`Bearer ${a}`, NOW));
  assert.equal(lookups(), 4);
});

test('a valid key returns its record, looked up once, whatever the scheme case', async (t) => {
  const { auth, gateway, lookups } = setup(t);
  const { record, key } = await create(gateway);
  assert.deepEqual(await auth.authenticate(`Bearer ${key}`, NOW), record);
  assert.deepEqual(await auth.authenticate(`bearer  ${key} `, NOW), record);
  assert.equal(lookups(), 1);
});

test('records handed out are frozen, so one request cannot change the next', async (t) => {
  const { auth, gateway } = setup(t);
  const { key } = await create(gateway);
  const record = await auth.authenticate(`Bearer ${key}`, NOW);
  assert.ok(Object.isFrozen(record));
  assert.ok(Object.isFrozen(record.metadata));
  assert.ok(Object.isFrozen(record.limits));
});

test('a revoked key is refused with revoked_api_key', async (t) => {
  const { auth, gateway } = setup(t);
  const { record, key } = await create(gateway);
  await gateway.revoke(record.id, NOW);
  const error = await refusal(auth.authenticate(`Bearer ${key}`, NOW));
  assert.ok(isGuardError(error, 'revoked_api_key'));
});

test('a key is refused with expired_api_key from its expiry time on', async (t) => {
  const { auth, gateway } = setup(t);
  const { key } = await create(gateway, { expiresAt: '2026-06-01T13:00:00.000Z' });
  await auth.authenticate(`Bearer ${key}`, new Date('2026-06-01T12:59:59.999Z'));
  const error = await refusal(auth.authenticate(`Bearer ${key}`, new Date('2026-06-01T13:00Z')));
  assert.ok(isGuardError(error, 'expired_api_key'));
});

test('a rotated key works until its grace period ends, then gets rotated_api_key', async (t) => {
  const { auth, gateway } = setup(t);
  const { record, key } = await create(gateway);
  await gateway.update(record.id, {
    rotatedAt: NOW.toISOString(),
    replacedBy: 'key_AAAAAAAAAAAAAAAA',
    graceUntil: '2026-06-02T12:00:00.000Z',
  });
  await auth.authenticate(`Bearer ${key}`, new Date('2026-06-02T11:00:00Z'));
  const error = await refusal(auth.authenticate(`Bearer ${key}`, new Date('2026-06-02T12:00Z')));
  assert.ok(isGuardError(error, 'rotated_api_key'));
});

test('a revoke through another connection is seen from the next turn of the event loop', async (t) => {
  const { auth, cli, lookups } = setup(t);
  const { record, key } = await create(cli);
  await auth.authenticate(`Bearer ${key}`, NOW);
  await auth.authenticate(`Bearer ${key}`, NOW);
  assert.equal(lookups(), 1);

  await cli.revoke(record.id, NOW);
  await nextTurn();
  const error = await refusal(auth.authenticate(`Bearer ${key}`, NOW));
  assert.ok(isGuardError(error, 'revoked_api_key'));
});

test('a limit changed through another connection applies from the next turn', async (t) => {
  const { auth, cli, lookups } = setup(t);
  const { record, key } = await create(cli);
  assert.equal((await auth.authenticate(`Bearer ${key}`, NOW)).limits.rpm, null);
  assert.equal((await auth.authenticate(`Bearer ${key}`, NOW)).limits.rpm, null);
  assert.equal(lookups(), 1);

  await cli.update(record.id, { limits: { rpm: 5, monthlyTokens: 1000 }, models: ['codestral-*'] });
  await nextTurn();
  const updated = await auth.authenticate(`Bearer ${key}`, NOW);
  assert.deepEqual(updated.limits, {
    rpm: 5,
    tpm: null,
    concurrency: null,
    dailyTokens: null,
    monthlyTokens: 1000,
  });
  assert.deepEqual(updated.models, ['codestral-*']);
  assert.equal(lookups(), 2);
});

test('a key stored by another connection is found although it was cached as unknown', async (t) => {
  const { auth, cli, dir } = setup(t);
  const { record, key } = await create(cli);
  // Stores make their own keys, so the row is taken out and put back to have a key that is
  // tried (and cached as unknown) before it exists.
  const raw = openSqlite(join(dir, SQLITE_FILE));
  t.after(() => raw.close());
  const row = raw.prepare('SELECT * FROM virtual_keys WHERE id = ?').get(record.id) as object;
  raw.prepare('DELETE FROM virtual_keys WHERE id = ?').run(record.id);
  await refusal(auth.authenticate(`Bearer ${key}`, NOW));

  const columns = Object.keys(row);
  raw
    .prepare(`INSERT INTO virtual_keys (${columns}) VALUES (${columns.map(() => '?')})`)
    .run(...Object.values(row));
  await nextTurn();
  const found = await auth.authenticate(`Bearer ${key}`, NOW);
  assert.equal(found.id, record.id);
});

test('commits by other stores to the shared database file keep the cache', async (t) => {
  const { auth, gateway, dir, lookups } = setup(t);
  const { key } = await create(gateway);
  const raw = openSqlite(join(dir, SQLITE_FILE));
  t.after(() => raw.close());
  raw.exec('CREATE TABLE audit_like (n INTEGER)');
  for (let i = 0; i < 3; i++) {
    raw.prepare('INSERT INTO audit_like (n) VALUES (?)').run(i);
    await auth.authenticate(`Bearer ${key}`, NOW);
  }
  assert.equal(lookups(), 1);
});

test('a revoke by another process is seen without restarting', async (t) => {
  const { auth, dir } = setup(t);
  const other = openSqliteKeyStore(dir);
  const { record, key } = await create(other);
  await other.close();
  await auth.authenticate(`Bearer ${key}`, NOW);

  const store = fileURLToPath(new URL('../../src/keys/sqlite-store.ts', import.meta.url));
  const script =
    `const { openSqliteKeyStore } = await import(${JSON.stringify(store)});` +
    `const s = openSqliteKeyStore(${JSON.stringify(dir)});` +
    `await s.revoke(${JSON.stringify(record.id)}); await s.close();`;
  const child = spawnSync(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script],
    { encoding: 'utf8' },
  );
  assert.equal(child.status, 0, child.stderr);

  // spawnSync held this turn; a request would arrive in a later one.
  await nextTurn();
  const error = await refusal(auth.authenticate(`Bearer ${key}`, NOW));
  assert.ok(isGuardError(error, 'revoked_api_key'));
});

test('without a change feed, cached answers are trusted for a second only', async (t) => {
  const { auth, cli, lookups } = setup(t, { withFeed: false });
  const { record, key } = await create(cli);
  await auth.authenticate(`Bearer ${key}`, NOW);
  await cli.revoke(record.id, NOW);
  await auth.authenticate(`Bearer ${key}`, new Date(NOW.getTime() + 999));
  assert.equal(lookups(), 1);

  const later = new Date(NOW.getTime() + 1000);
  const error = await refusal(auth.authenticate(`Bearer ${key}`, later));
  assert.ok(isGuardError(error, 'revoked_api_key'));
});

test('no refusal message contains the key, its hash or its fingerprint', async (t) => {
  const { auth, gateway } = setup(t);
  const { record, key } = await create(gateway);
  await gateway.revoke(record.id, NOW);
  const unknown = generateVirtualKey();
  for (const token of [key, unknown, `${key.slice(0, -1)}x`]) {
    const error = await refusal(auth.authenticate(`Bearer ${token}`, NOW));
    const text = `${error.message} ${String(error.cause ?? '')} ${JSON.stringify(error)}`;
    for (const secret of [
      token,
      hashVirtualKey(token),
      keyFingerprint(token),
      token.slice(3, 35),
    ]) {
      assert.ok(!text.includes(secret));
    }
  }
});

test('a fingerprint is the first 8 hex digits of the hash', () => {
  const key = generateVirtualKey();
  assert.equal(keyFingerprint(key), hashVirtualKey(key).slice(0, 8));
  assert.match(keyFingerprint(key), /^[0-9a-f]{8}$/);
});
