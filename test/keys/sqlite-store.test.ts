import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { hashVirtualKey, isWellFormedVirtualKey } from '../../src/keys/format.js';
import { openSqliteKeyStore, type SqliteKeyStore } from '../../src/keys/sqlite-store.js';
import { openSqlite, SQLITE_FILE } from '../../src/store/sqlite.js';

function tempStore(t: TestContext): { store: SqliteKeyStore; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mg-keys-store-'));
  const store = openSqliteKeyStore(dir);
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, dir };
}

test('a created key is returned once and only its hash is stored', async (t) => {
  const { store } = tempStore(t);
  const { record, key } = await store.create({ name: 'billing', environment: 'production' });

  assert.ok(isWellFormedVirtualKey(key));
  assert.match(record.id, /^key_[0-9A-Za-z]{16}$/);
  assert.equal(record.hash, hashVirtualKey(key));
  assert.ok(!JSON.stringify(record).includes(key));
  assert.deepEqual(await store.get(record.id), record);
  assert.deepEqual(await store.findByHash(record.hash), record);
});

test('every chosen field, including JSON ones, survives the round trip', async (t) => {
  const { store } = tempStore(t);
  const now = new Date('2026-03-01T10:00:00.000Z');
  const { record } = await store.create({
    name: 'support bot',
    environment: 'staging',
    models: ['mistral-small-latest', 'codestral-latest'],
    maxTokens: 2048,
    expiresAt: '2026-04-01T00:00:00.000Z',
    limits: { rpm: 60, tpm: 100_000, concurrency: 4, dailyTokens: 1_000_000 },
    metadata: { team: 'support' },
    now,
  });

  const stored = await store.get(record.id);
  assert.deepEqual(stored, {
    id: record.id,
    name: 'support bot',
    hash: record.hash,
    environment: 'staging',
    models: ['mistral-small-latest', 'codestral-latest'],
    maxTokens: 2048,
    createdAt: '2026-03-01T10:00:00.000Z',
    expiresAt: '2026-04-01T00:00:00.000Z',
    revokedAt: null,
    rotatedAt: null,
    replacedBy: null,
    graceUntil: null,
    limits: { rpm: 60, tpm: 100_000, concurrency: 4, dailyTokens: 1_000_000 },
    metadata: { team: 'support' },
  });
});

test('unknown ids and hashes resolve to null', async (t) => {
  const { store } = tempStore(t);
  assert.equal(await store.get('key_0000000000000000'), null);
  assert.equal(await store.findByHash('0'.repeat(64)), null);
  assert.equal(await store.revoke('key_0000000000000000'), null);
  assert.equal(await store.update('key_0000000000000000', { name: 'x' }), null);
});

test('list leaves revoked keys out unless asked, oldest first', async (t) => {
  const { store } = tempStore(t);
  const first = await store.create({
    name: 'a',
    environment: 'development',
    now: new Date('2026-01-01T00:00:00Z'),
  });
  const second = await store.create({
    name: 'b',
    environment: 'development',
    now: new Date('2026-01-02T00:00:00Z'),
  });
  await store.revoke(first.record.id);

  assert.deepEqual(
    (await store.list()).map((r) => r.id),
    [second.record.id],
  );
  assert.deepEqual(
    (await store.list({ includeRevoked: true })).map((r) => r.id),
    [first.record.id, second.record.id],
  );
});

test('revoking twice keeps the time of the first revocation', async (t) => {
  const { store } = tempStore(t);
  const { record } = await store.create({ name: 'a', environment: 'development' });
  const once = await store.revoke(record.id, new Date('2026-05-01T00:00:00Z'));
  const twice = await store.revoke(record.id, new Date('2026-06-01T00:00:00Z'));
  assert.equal(once?.revokedAt, '2026-05-01T00:00:00.000Z');
  assert.equal(twice?.revokedAt, '2026-05-01T00:00:00.000Z');
});

test('update changes only the fields given and keeps identity and hash', async (t) => {
  const { store } = tempStore(t);
  const { record } = await store.create({ name: 'a', environment: 'development', maxTokens: 10 });
  const updated = await store.update(record.id, {
    name: 'renamed',
    models: ['mistral-large-latest'],
    limits: { rpm: 5 },
    replacedBy: 'key_AAAAAAAAAAAAAAAA',
    graceUntil: '2026-07-01T00:00:00.000Z',
  });
  assert.deepEqual(updated, {
    ...record,
    name: 'renamed',
    models: ['mistral-large-latest'],
    limits: { rpm: 5 },
    replacedBy: 'key_AAAAAAAAAAAAAAAA',
    graceUntil: '2026-07-01T00:00:00.000Z',
  });
  const cleared = await store.update(record.id, { models: null, maxTokens: null });
  assert.equal(cleared?.models, null);
  assert.equal(cleared?.maxTokens, null);
});

test('reopening the database keeps keys and runs the migration only once', async (t) => {
  const { store, dir } = tempStore(t);
  const { record } = await store.create({ name: 'a', environment: 'development' });
  const again = openSqliteKeyStore(dir);
  t.after(() => again.close());

  assert.deepEqual(await again.get(record.id), record);
  const db = openSqlite(join(dir, SQLITE_FILE));
  t.after(() => db.close());
  assert.deepEqual(db.prepare("SELECT version FROM schema_versions WHERE module = 'keys'").get(), {
    version: 1,
  });
  const indexes = db.prepare('PRAGMA index_list(virtual_keys)').all() as Array<{
    name: string;
    unique: number;
  }>;
  assert.ok(indexes.some((i) => i.name === 'virtual_keys_hash' && i.unique === 1));
});

test('the change feed reports each commit, from this or another connection, once', async (t) => {
  const { store, dir } = tempStore(t);
  const other = openSqliteKeyStore(dir);
  t.after(() => other.close());
  const changed = store.changes();

  assert.equal(changed(), false);
  const { record } = await other.create({ name: 'elsewhere', environment: 'development' });
  assert.equal(changed(), true);
  assert.equal(changed(), false);
  await store.revoke(record.id);
  assert.equal(changed(), true);
  assert.equal(changed(), false);
  await store.get(record.id);
  assert.equal(changed(), false);
});

test('commits to other tables of the shared file do not count as key changes', async (t) => {
  const { store, dir } = tempStore(t);
  const changed = store.changes();
  const raw = openSqlite(join(dir, SQLITE_FILE));
  t.after(() => raw.close());
  raw.exec('CREATE TABLE audit_like (n INTEGER)');
  raw.prepare('INSERT INTO audit_like (n) VALUES (1)').run();
  assert.equal(changed(), false);

  raw.prepare("UPDATE virtual_keys SET name = 'x'").run();
  raw
    .prepare(
      "INSERT INTO virtual_keys (id, name, hash, environment, created_at) VALUES ('key_0000000000000000', 'raw', 'h', 'development', '2026-01-01T00:00:00Z')",
    )
    .run();
  assert.equal(changed(), true);
});
