import assert from 'node:assert/strict';
import { test } from 'node:test';
import { envKeySource } from '../../src/secrets/env-source.js';
import { isUpstreamKeyError } from '../../src/secrets/errors.js';
import { envOf, newKey } from './helpers.js';

test("the environment's own variable wins over the shared one", async () => {
  const own = newKey();
  const source = envKeySource('production', {
    readEnv: envOf({ MISTRAL_API_KEY_PRODUCTION: own, MISTRAL_API_KEY: newKey() }),
  });
  const loaded = await source.load();
  assert.equal(loaded.key.reveal(), own);
  assert.equal(loaded.key.source, 'MISTRAL_API_KEY_PRODUCTION');
  assert.equal(loaded.own, true);
  assert.equal(source.location, 'MISTRAL_API_KEY_PRODUCTION or MISTRAL_API_KEY');
});

test('the shared variable is used but marked as not the environment own', async () => {
  const source = envKeySource('staging-eu', { readEnv: envOf({ MISTRAL_API_KEY: newKey() }) });
  const loaded = await source.load();
  assert.equal(loaded.own, false);
  assert.equal(loaded.key.source, 'MISTRAL_API_KEY');
});

test('a configured variable is the only one read', async () => {
  const key = newKey();
  const source = envKeySource('production', {
    variable: 'PROD_MISTRAL',
    readEnv: envOf({ PROD_MISTRAL: key, MISTRAL_API_KEY: newKey() }),
  });
  assert.equal((await source.load()).key.reveal(), key);
  const unset = envKeySource('production', { variable: 'PROD_MISTRAL', readEnv: envOf({}) });
  await assert.rejects(unset.load(), (e) => {
    assert.ok(isUpstreamKeyError(e, 'source_not_found'));
    assert.equal(e.message, 'PROD_MISTRAL is not set');
    return true;
  });
});

test('no variable set is source_not_found naming both', async () => {
  const source = envKeySource('production', { readEnv: envOf({}) });
  await assert.rejects(source.load(), (e) => {
    assert.ok(isUpstreamKeyError(e, 'source_not_found'));
    assert.equal(e.message, 'neither MISTRAL_API_KEY_PRODUCTION nor MISTRAL_API_KEY is set');
    return true;
  });
});
