import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { rotateVirtualKey } from '../../src/keys/rotate.js';
import type { KeyGuard } from '../../src/keys/types.js';
import { openStores, type Stores } from '../../src/store/open.js';
import { BACKENDS, type BackendContext } from '../store/backends.js';

const RULES: KeyGuard = {
  input: { categories: { pii: 'block' }, detectors: { openai_api_key: 'block' } },
  output: { detectors: { email: 'redact' } },
};

async function open(t: TestContext, ctx: BackendContext): Promise<Stores> {
  const stores = await openStores(ctx.config, { prune: false });
  t.after(() => stores.close());
  return stores;
}

/** Turns the backend's key tables back into what the store made before keys had guard rules. */
async function dropGuardColumn(ctx: BackendContext): Promise<void> {
  await ctx.sql('keys', 'ALTER TABLE virtual_keys DROP COLUMN guard');
  const before = ctx.name === 'sqlite' ? 2 : 1;
  await ctx.sql('keys', `UPDATE schema_versions SET version = ? WHERE module = 'keys'`, [before]);
}

for (const backend of BACKENDS) {
  describe(`key guard rules on ${backend.name}`, { skip: backend.skip }, () => {
    test('rules survive the round trip and a key without rules reads back null', async (t) => {
      const { keys } = await open(t, await backend.setup(t));
      const { record } = await keys.create({
        name: 'strict',
        environment: 'production',
        guard: RULES,
      });
      const { record: plain } = await keys.create({ name: 'plain', environment: 'production' });

      assert.deepEqual(record.guard, RULES);
      assert.deepEqual((await keys.get(record.id))?.guard, RULES);
      assert.deepEqual((await keys.findByHash(record.hash))?.guard, RULES);
      assert.equal((await keys.get(plain.id))?.guard, null);
    });

    test('update replaces the rules whole, null clears them, other patches keep them', async (t) => {
      const { keys } = await open(t, await backend.setup(t));
      const { record } = await keys.create({ name: 'k', environment: 'production', guard: RULES });

      const renamed = await keys.update(record.id, { name: 'renamed' });
      assert.deepEqual(renamed?.guard, RULES);
      const replaced = await keys.update(record.id, {
        guard: { output: { categories: { secret: 'block' } } },
      });
      assert.deepEqual(replaced?.guard, { output: { categories: { secret: 'block' } } });
      assert.equal((await keys.update(record.id, { guard: null }))?.guard, null);
      // Rules that set nothing are stored as none.
      assert.equal((await keys.update(record.id, { guard: { input: {} } }))?.guard, null);
    });

    test('a rotated key keeps the rules of the key it replaces', async (t) => {
      const { keys } = await open(t, await backend.setup(t));
      const { record } = await keys.create({ name: 'k', environment: 'production', guard: RULES });
      const rotated = await rotateVirtualKey(keys, record.id, { graceMs: 0 });
      assert.deepEqual(rotated.record.guard, RULES);
    });

    test('malformed rules are refused before they reach the database', async (t) => {
      const { keys } = await open(t, await backend.setup(t));
      const bad = [
        { input: { categories: { pii: 'shout' } } },
        { input: { categories: { phone: 'block' } } },
        { input: { detectors: { 'Not An Id': 'block' } } },
        { sideways: {} },
        { input: { default: 'block' } },
      ];
      for (const guard of bad) {
        await assert.rejects(
          keys.create({ name: 'k', environment: 'production', guard: guard as KeyGuard }),
          TypeError,
          JSON.stringify(guard),
        );
      }
      assert.deepEqual(await keys.list(), []);
    });

    test('a database from before guard rules is upgraded and keeps its keys', async (t) => {
      const ctx = await backend.setup(t);
      const first = await openStores(ctx.config, { prune: false });
      const { record } = await first.keys.create({
        name: 'old',
        environment: 'production',
        limits: { rpm: 60 },
      });
      await first.close();
      await dropGuardColumn(ctx);

      const { keys } = await open(t, ctx);
      const upgraded = await keys.get(record.id);
      assert.equal(upgraded?.guard, null);
      assert.equal(upgraded?.limits.rpm, 60);
      assert.equal(upgraded?.name, 'old');
      const updated = await keys.update(record.id, { guard: RULES });
      assert.deepEqual(updated?.guard, RULES);
      const [version] = await ctx.sql(
        'keys',
        `SELECT version FROM schema_versions WHERE module = 'keys'`,
      );
      assert.equal(Number(version?.version), backend.name === 'sqlite' ? 3 : 2);
    });
  });
}
