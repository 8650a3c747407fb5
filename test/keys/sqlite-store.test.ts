import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { openSqliteKeyStore, type SqliteKeyStore } from '../../src/keys/sqlite-store.js';
import { migrate, openSqlite, SQLITE_FILE } from '../../src/store/sqlite.js';

const NO_LIMITS = {
  rpm: null,
  tpm: null,
  concurrency: null,
  dailyTokens: null,
  monthlyTokens: null,
};

function tempStore(t: TestContext): { store: SqliteKeyStore; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mg-keys-store-'));
  const store = openSqliteKeyStore(dir);
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, dir };
}

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
    limits: {
      rpm: 60,
      tpm: 100_000,
      concurrency: 4,
      dailyTokens: 1_000_000,
      monthlyTokens: null,
    },
    guard: null,
    metadata: { team: 'support' },
  });
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
    limits: { ...NO_LIMITS, rpm: 5 },
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
    version: 3,
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
  await nextTurn();
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
  await nextTurn();
  assert.equal(changed(), false);

  raw.prepare("UPDATE virtual_keys SET name = 'x'").run();
  raw
    .prepare(
      "INSERT INTO virtual_keys (id, name, hash, environment, created_at) VALUES ('key_0000000000000000', 'raw', 'h', 'development', '2026-01-01T00:00:00Z')",
    )
    .run();
  await nextTurn();
  assert.equal(changed(), true);
});

test('the file is read once per turn: a commit from elsewhere shows from the next turn', async (t) => {
  const { store, dir } = tempStore(t);
  const other = openSqliteKeyStore(dir);
  t.after(() => other.close());
  const changed = store.changes();
  assert.equal(changed(), false);
  await other.create({ name: 'elsewhere', environment: 'development' });
  // Requests reach the gateway in a turn of their own, after the bytes they are made of
  // arrived; a commit made later in the same turn belongs to the requests of the next one.
  assert.equal(changed(), false);
  await nextTurn();
  assert.equal(changed(), true);
  // Writes through the store itself are seen at once, turn or not.
  await store.create({ name: 'here', environment: 'development' });
  assert.equal(changed(), true);
});

test('a key created without limits has every limit null, so its profile applies', async (t) => {
  const { store } = tempStore(t);
  const { record } = await store.create({ name: 'plain', environment: 'development' });
  assert.deepEqual(record.limits, NO_LIMITS);
  assert.deepEqual((await store.get(record.id))?.limits, NO_LIMITS);
});

test('limits change one by one: null clears one, limits null clears them all', async (t) => {
  const { store } = tempStore(t);
  const { record } = await store.create({
    name: 'a',
    environment: 'development',
    limits: { rpm: 60, tpm: 1000, monthlyTokens: 5_000_000 },
  });
  const narrowed = await store.update(record.id, { limits: { tpm: null, concurrency: 2 } });
  assert.deepEqual(narrowed?.limits, {
    rpm: 60,
    tpm: null,
    concurrency: 2,
    dailyTokens: null,
    monthlyTokens: 5_000_000,
  });
  const renamed = await store.update(record.id, { name: 'b' });
  assert.deepEqual(renamed?.limits, narrowed?.limits);
  const cleared = await store.update(record.id, { limits: null });
  assert.deepEqual(cleared?.limits, NO_LIMITS);
});

/** The schema the first version of the store created, kept to test the upgrade from it. */
const FIRST_SCHEMA = `
  CREATE TABLE virtual_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL, environment TEXT NOT NULL,
    models TEXT, max_tokens INTEGER, created_at TEXT NOT NULL, expires_at TEXT,
    revoked_at TEXT, rotated_at TEXT, replaced_by TEXT, grace_until TEXT, limits TEXT,
    metadata TEXT NOT NULL DEFAULT '{}'
  ) STRICT;
  CREATE UNIQUE INDEX virtual_keys_hash ON virtual_keys (hash);
  CREATE TABLE virtual_keys_version (
    id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL
  ) STRICT;
  INSERT INTO virtual_keys_version (id, version) VALUES (1, 0);
  CREATE TRIGGER virtual_keys_inserted AFTER INSERT ON virtual_keys
    BEGIN UPDATE virtual_keys_version SET version = version + 1; END;
  CREATE TRIGGER virtual_keys_updated AFTER UPDATE ON virtual_keys
    BEGIN UPDATE virtual_keys_version SET version = version + 1; END;
  CREATE TRIGGER virtual_keys_deleted AFTER DELETE ON virtual_keys
    BEGIN UPDATE virtual_keys_version SET version = version + 1; END;
`;

test('a database made by the first schema is upgraded and keeps its keys and limits', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-keys-upgrade-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const old = openSqlite(join(dir, SQLITE_FILE));
  migrate(old, 'keys', [{ version: 1, up: FIRST_SCHEMA }]);
  const insert = old.prepare(
    `INSERT INTO virtual_keys (id, name, hash, environment, created_at, limits)
     VALUES (?, ?, ?, 'production', '2026-01-01T00:00:00.000Z', ?)`,
  );
  insert.run('key_AAAAAAAAAAAAAAAA', 'limited', 'a'.repeat(64), '{"rpm":60,"dailyTokens":1000}');
  insert.run('key_BBBBBBBBBBBBBBBB', 'plain', 'b'.repeat(64), null);
  // Values the old JSON column could hold but no limit may be: each falls back to the profile.
  insert.run(
    'key_CCCCCCCCCCCCCCCC',
    'odd',
    'c'.repeat(64),
    '{"rpm":0,"tpm":1.5,"concurrency":"4"}',
  );
  insert.run('key_DDDDDDDDDDDDDDDD', 'broken', 'd'.repeat(64), 'not json');
  old.close();

  const store = openSqliteKeyStore(dir);
  t.after(() => store.close());
  assert.deepEqual((await store.get('key_AAAAAAAAAAAAAAAA'))?.limits, {
    ...NO_LIMITS,
    rpm: 60,
    dailyTokens: 1000,
  });
  for (const id of ['key_BBBBBBBBBBBBBBBB', 'key_CCCCCCCCCCCCCCCC', 'key_DDDDDDDDDDDDDDDD']) {
    assert.deepEqual((await store.get(id))?.limits, NO_LIMITS, id);
  }
  assert.equal((await store.findByHash('a'.repeat(64)))?.name, 'limited');

  const raw = openSqlite(join(dir, SQLITE_FILE));
  t.after(() => raw.close());
  const columns = (raw.prepare('PRAGMA table_info(virtual_keys)').all() as { name: string }[]).map(
    (c) => c.name,
  );
  assert.ok(!columns.includes('limits'));
  assert.ok(columns.includes('guard'));
  assert.equal((await store.get('key_AAAAAAAAAAAAAAAA'))?.guard, null);
  assert.deepEqual(raw.prepare("SELECT version FROM schema_versions WHERE module = 'keys'").get(), {
    version: 3,
  });
});

test('after the upgrade, the change feed still sees updates made by another connection', async (t) => {
  const { store, dir } = tempStore(t);
  const { record } = await store.create({ name: 'a', environment: 'development' });
  const other = openSqliteKeyStore(dir);
  t.after(() => other.close());
  const changed = store.changes();
  await other.update(record.id, { limits: { rpm: 7 } });
  assert.equal(changed(), true);
  assert.equal((await store.get(record.id))?.limits.rpm, 7);
});
