import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { isGuardError } from '../../src/errors.js';
import { createAuthenticator } from '../../src/keys/authenticator.js';
import { hashVirtualKey, isWellFormedVirtualKey } from '../../src/keys/format.js';
import { openStores, type Stores } from '../../src/store/open.js';
import { BACKENDS, type BackendContext } from './backends.js';

const NO_LIMITS = {
  rpm: null,
  tpm: null,
  concurrency: null,
  dailyTokens: null,
  monthlyTokens: null,
};

/** Polls `check` every 5 ms until it is true, for at most 3 s. */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('condition not reached in 3 s');
}

async function replica(t: TestContext, ctx: BackendContext): Promise<Stores> {
  const stores = await openStores(ctx.config, { prune: false });
  t.after(() => stores.close());
  return stores;
}

for (const backend of BACKENDS) {
  describe(`key store on ${backend.name}`, { skip: backend.skip }, () => {
    test('a created key is returned once and only its hash is stored', async (t) => {
      const { keys } = await replica(t, await backend.setup(t));
      const { record, key } = await keys.create({ name: 'billing', environment: 'production' });
      assert.ok(isWellFormedVirtualKey(key));
      assert.match(record.id, /^key_[0-9A-Za-z]{16}$/);
      assert.equal(record.hash, hashVirtualKey(key));
      assert.ok(!JSON.stringify(record).includes(key));
      assert.deepEqual(await keys.get(record.id), record);
      assert.deepEqual(await keys.findByHash(record.hash), record);
    });

    test('every chosen field, including lists and labels, survives the round trip', async (t) => {
      const { keys } = await replica(t, await backend.setup(t));
      const { record } = await keys.create({
        name: 'support bot',
        environment: 'staging',
        models: ['mistral-small-latest', 'codestral-latest'],
        maxTokens: 2048,
        expiresAt: '2026-04-01T00:00:00.000Z',
        limits: { rpm: 60, tpm: 100_000, concurrency: 4, dailyTokens: 1_000_000 },
        metadata: { team: 'support', 'quote"d': 'a\\b' },
        now: new Date('2026-03-01T10:00:00.000Z'),
      });
      assert.deepEqual(await keys.get(record.id), {
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
        limits: { ...NO_LIMITS, rpm: 60, tpm: 100_000, concurrency: 4, dailyTokens: 1_000_000 },
        guard: null,
        metadata: { team: 'support', 'quote"d': 'a\\b' },
      });
    });

    test('unknown ids and hashes resolve to null', async (t) => {
      const { keys } = await replica(t, await backend.setup(t));
      assert.equal(await keys.get('key_0000000000000000'), null);
      assert.equal(await keys.findByHash('0'.repeat(64)), null);
      assert.equal(await keys.revoke('key_0000000000000000'), null);
      assert.equal(await keys.update('key_0000000000000000', { name: 'x' }), null);
    });

    test('list leaves revoked keys out unless asked, oldest first', async (t) => {
      const { keys } = await replica(t, await backend.setup(t));
      const first = await keys.create({
        name: 'a',
        environment: 'development',
        now: new Date('2026-01-01T00:00:00Z'),
      });
      const second = await keys.create({
        name: 'b',
        environment: 'development',
        now: new Date('2026-01-02T00:00:00Z'),
      });
      await keys.revoke(first.record.id);
      assert.deepEqual(
        (await keys.list()).map((r) => r.id),
        [second.record.id],
      );
      assert.deepEqual(
        (await keys.list({ includeRevoked: true })).map((r) => r.id),
        [first.record.id, second.record.id],
      );
    });

    test('revoking twice keeps the time of the first revocation', async (t) => {
      const { keys } = await replica(t, await backend.setup(t));
      const { record } = await keys.create({ name: 'a', environment: 'development' });
      const once = await keys.revoke(record.id, new Date('2026-05-01T00:00:00Z'));
      const twice = await keys.revoke(record.id, new Date('2026-06-01T00:00:00Z'));
      assert.equal(once?.revokedAt, '2026-05-01T00:00:00.000Z');
      assert.equal(twice?.revokedAt, '2026-05-01T00:00:00.000Z');
    });

    test('update changes only the fields given; limits change one by one', async (t) => {
      const { keys } = await replica(t, await backend.setup(t));
      const { record } = await keys.create({
        name: 'a',
        environment: 'development',
        maxTokens: 10,
        limits: { rpm: 60, tpm: 1000, monthlyTokens: 5_000_000 },
      });
      const updated = await keys.update(record.id, {
        name: 'renamed',
        models: ['mistral-large-latest'],
        limits: { tpm: null, concurrency: 2 },
        replacedBy: 'key_AAAAAAAAAAAAAAAA',
        graceUntil: '2026-07-01T00:00:00.000Z',
      });
      assert.deepEqual(updated, {
        ...record,
        name: 'renamed',
        models: ['mistral-large-latest'],
        limits: { ...NO_LIMITS, rpm: 60, concurrency: 2, monthlyTokens: 5_000_000 },
        replacedBy: 'key_AAAAAAAAAAAAAAAA',
        graceUntil: '2026-07-01T00:00:00.000Z',
      });
      const cleared = await keys.update(record.id, { models: null, maxTokens: null, limits: null });
      assert.equal(cleared?.models, null);
      assert.equal(cleared?.maxTokens, null);
      assert.deepEqual(cleared?.limits, NO_LIMITS);
    });

    test('a limit that is not a positive integer is refused with its name', async (t) => {
      const { keys } = await replica(t, await backend.setup(t));
      const { record } = await keys.create({ name: 'a', environment: 'development' });
      for (const rpm of [0, -1, 1.5, Number.NaN, 2 ** 60]) {
        await assert.rejects(keys.update(record.id, { limits: { rpm } }), /limits\.rpm must be/);
      }
      assert.deepEqual((await keys.get(record.id))?.limits, NO_LIMITS);
    });

    test('the database itself refuses a limit below 1 written around the store', async (t) => {
      const ctx = await backend.setup(t);
      const { keys } = await replica(t, ctx);
      const { record } = await keys.create({ name: 'a', environment: 'development' });
      await assert.rejects(
        ctx.sql('keys', 'UPDATE virtual_keys SET monthly_tokens = 0 WHERE id = ?', [record.id]),
        /check constraint/i,
      );
    });

    test('opening the store again keeps the keys and migrates nothing twice', async (t) => {
      const ctx = await backend.setup(t);
      const first = await replica(t, ctx);
      const { record } = await first.keys.create({ name: 'a', environment: 'development' });
      const second = await replica(t, ctx);
      assert.deepEqual(await second.keys.get(record.id), record);
      const versions = await ctx.sql('keys', 'SELECT module, version FROM schema_versions');
      assert.equal(versions.filter((row) => row.module === 'keys').length, 1);
    });

    test('a key created through one replica is accepted by the other', async (t) => {
      const ctx = await backend.setup(t);
      const [a, b] = [await replica(t, ctx), await replica(t, ctx)];
      const auth = createAuthenticator({ store: a.keys, changes: a.keys.changes() });
      const { key } = await b.keys.create({ name: 'late', environment: 'development' });
      assert.equal((await auth.authenticate(`Bearer ${key}`)).name, 'late');
    });

    test('a key revoked through one replica is refused by the other', async (t) => {
      const ctx = await backend.setup(t);
      const [a, b] = [await replica(t, ctx), await replica(t, ctx)];
      const auth = createAuthenticator({ store: a.keys, changes: a.keys.changes() });
      const { record, key } = await b.keys.create({ name: 'shared', environment: 'development' });
      await until(async () => {
        try {
          return (await auth.authenticate(`Bearer ${key}`)).id === record.id;
        } catch {
          return false;
        }
      });
      await auth.authenticate(`Bearer ${key}`);

      const revokedAt = Date.now();
      await b.keys.revoke(record.id);
      let refusedAt = 0;
      await until(async () => {
        try {
          await auth.authenticate(`Bearer ${key}`);
          return false;
        } catch (error) {
          assert.ok(isGuardError(error));
          assert.equal(error.code, 'revoked_api_key');
          refusedAt = Date.now();
          return true;
        }
      });
      // Notification delivery is a round trip on loopback; a generous bound keeps CI steady.
      assert.ok(refusedAt - revokedAt < 500, `seen after ${refusedAt - revokedAt} ms`);
    });

    test('a limit changed through one replica applies on the other', async (t) => {
      const ctx = await backend.setup(t);
      const [a, b] = [await replica(t, ctx), await replica(t, ctx)];
      const auth = createAuthenticator({ store: a.keys, changes: a.keys.changes() });
      const { record, key } = await a.keys.create({ name: 'x', environment: 'development' });
      assert.equal((await auth.authenticate(`Bearer ${key}`)).limits.rpm, null);
      await b.keys.update(record.id, { limits: { rpm: 7 } });
      await until(async () => (await auth.authenticate(`Bearer ${key}`)).limits.rpm === 7);
    });
  });
}
