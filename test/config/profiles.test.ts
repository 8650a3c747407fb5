import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.js';

test('changing one field of a built-in profile keeps its other built-in values', () => {
  const config = configSchema.parse({ profiles: { production: { maxBodyBytes: 5000 } } });
  assert.equal(config.profiles.production!.maxBodyBytes, 5000);
  assert.equal(config.profiles.production!.maxTokens, 4096);
  assert.equal(config.profiles.production!.limits.onOutage, 'refuse');
});

test('a profile the file adds takes the schema defaults for what it leaves out', () => {
  const config = configSchema.parse({ profiles: { qa: { maxTokens: 10 } } });
  assert.equal(config.profiles.qa!.maxTokens, 10);
  assert.equal(config.profiles.qa!.maxBodyBytes, 1_048_576);
  assert.equal(config.profiles.qa!.guard.enabled, true);
});

test('profile fields are still checked, each problem at its path', () => {
  const result = configSchema.safeParse({ profiles: { production: { maxTokens: -1, bogus: 1 } } });
  assert.equal(result.success, false);
  const paths = result.error!.issues.map((i) => i.path.join('.'));
  assert.deepEqual(paths.sort(), ['profiles.production', 'profiles.production.maxTokens']);
});
