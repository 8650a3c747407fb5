import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Profile, profileSchema } from '../../src/config/schema.js';
import {
  allowsAnyModel,
  effectiveLimits,
  effectivePolicy,
  modelAllowed,
} from '../../src/policy/policy.js';

const NO_OWN = { rpm: null, tpm: null, concurrency: null, dailyTokens: null, monthlyTokens: null };

function profile(overrides: Record<string, unknown> = {}): Profile {
  return profileSchema.parse({
    maxTokens: 4096,
    limits: { rpm: 600, tpm: 100_000, concurrency: 10, dailyTokens: null, monthlyTokens: 5e6 },
    ...overrides,
  });
}

test('a key without own limits is held to its profile limits', () => {
  const policy = effectivePolicy(profile(), { models: null, maxTokens: null, limits: NO_OWN });
  assert.deepEqual(policy.limits, profile().limits);
  assert.deepEqual(effectivePolicy(profile(), { models: null, maxTokens: null }).limits, {
    rpm: 600,
    tpm: 100_000,
    concurrency: 10,
    dailyTokens: null,
    monthlyTokens: 5_000_000,
    onOutage: 'refuse',
  });
});

test('each limit is the lower of the key and the profile, so a key can only narrow', () => {
  const policy = effectivePolicy(profile(), {
    models: null,
    maxTokens: null,
    limits: { rpm: 60, tpm: 1_000_000, concurrency: 10, dailyTokens: null, monthlyTokens: null },
  });
  assert.deepEqual(policy.limits, {
    rpm: 60,
    tpm: 100_000,
    concurrency: 10,
    dailyTokens: null,
    monthlyTokens: 5_000_000,
    onOutage: 'refuse',
  });
});

test('a key limit applies where the profile sets none', () => {
  const limits = effectiveLimits(profile().limits, { dailyTokens: 20_000 });
  assert.equal(limits.dailyTokens, 20_000);
  const open = profile({ limits: { rpm: null, tpm: null, concurrency: null } });
  assert.equal(effectiveLimits(open.limits, { rpm: 3 }).rpm, 3);
  assert.equal(effectiveLimits(open.limits, null).rpm, null);
});

test('the profile outage behaviour is kept whatever the key sets', () => {
  const lenient = profile({ limits: { onOutage: 'allow' } });
  const policy = effectivePolicy(lenient, { models: null, maxTokens: null, limits: { rpm: 1 } });
  assert.equal(policy.limits.onOutage, 'allow');
});

test('the token cap and the model lists still narrow as before', () => {
  const base = profile({ models: ['mistral-*', 'codestral-latest'] });
  const policy = effectivePolicy(base, {
    models: ['mistral-small-*'],
    maxTokens: 9000,
    limits: null,
  });
  assert.equal(policy.maxTokens, 4096);
  assert.equal(
    effectivePolicy(base, { models: null, maxTokens: 100, limits: null }).maxTokens,
    100,
  );
  assert.ok(modelAllowed(policy, 'mistral-small-latest'));
  assert.ok(!modelAllowed(policy, 'mistral-large-latest'));
  assert.ok(!modelAllowed(policy, 'codestral-latest'));
  assert.ok(!allowsAnyModel(policy));
});

test('the profile given is not changed by combining it with a key', () => {
  const base = profile();
  const before = structuredClone(base);
  effectivePolicy(base, { models: ['x'], maxTokens: 1, limits: { rpm: 1, tpm: 1 } });
  assert.deepEqual(base, before);
});
