import assert from 'node:assert/strict';
import { test } from 'node:test';
import { profileSchema } from '../../src/config/schema.js';
import { actionFor, type GuardPolicy } from '../../src/guard/index.js';
import { effectiveGuardPolicy, effectivePolicy } from '../../src/policy/policy.js';

const DETECTORS = [
  { id: 'email', category: 'pii' },
  { id: 'payment_card', category: 'pii' },
  { id: 'openai_api_key', category: 'secret' },
  { id: 'jwt', category: 'secret' },
] as const;

/** The action a policy gives each detector, for compact assertions. */
function actions(policy: GuardPolicy): Record<string, string> {
  return Object.fromEntries(
    DETECTORS.map((d) => [d.id, actionFor({ detector: d.id, category: d.category }, policy)]),
  );
}

const PROFILE: GuardPolicy = {
  categories: { secret: 'block', pii: 'redact' },
  detectors: { email: 'flag' },
};

test('a key without rules keeps the profile policy itself', () => {
  assert.equal(effectiveGuardPolicy(PROFILE, undefined, DETECTORS), PROFILE);
  assert.equal(effectiveGuardPolicy(PROFILE, null, DETECTORS), PROFILE);
  assert.equal(
    effectiveGuardPolicy(PROFILE, { categories: {}, detectors: {} }, DETECTORS),
    PROFILE,
  );
});

test('a key category rule reaches every detector of the category, even one the profile names', () => {
  const policy = effectiveGuardPolicy(PROFILE, { categories: { pii: 'block' } }, DETECTORS);
  assert.deepEqual(actions(policy), {
    email: 'block',
    payment_card: 'block',
    openai_api_key: 'block',
    jwt: 'block',
  });
});

test('a key detector rule beats its own category rule when stricter than the profile', () => {
  const policy = effectiveGuardPolicy(
    PROFILE,
    { categories: { pii: 'redact' }, detectors: { payment_card: 'block' } },
    DETECTORS,
  );
  assert.deepEqual(actions(policy), {
    email: 'redact',
    payment_card: 'block',
    openai_api_key: 'block',
    jwt: 'block',
  });
});

test('a looser key rule is ignored: a key can only narrow its profile', () => {
  const policy = effectiveGuardPolicy(
    PROFILE,
    { categories: { secret: 'allow', pii: 'flag' }, detectors: { openai_api_key: 'redact' } },
    DETECTORS,
  );
  assert.deepEqual(actions(policy), actions(PROFILE));
});

test('a key detector rule cannot undercut the profile category rule', () => {
  // The profile blocks secrets as a category; a key rule for one secret detector is looser.
  const policy = effectiveGuardPolicy(PROFILE, { detectors: { jwt: 'flag' } }, DETECTORS);
  assert.equal(actions(policy).jwt, 'block');
});

test('strength runs allow < flag < redact < block', () => {
  const order = ['allow', 'flag', 'redact', 'block'] as const;
  for (const profileAction of order) {
    for (const keyAction of order) {
      const policy = effectiveGuardPolicy(
        { categories: { secret: profileAction, pii: profileAction } },
        { detectors: { email: keyAction } },
        DETECTORS,
      );
      const expected =
        order.indexOf(keyAction) > order.indexOf(profileAction) ? keyAction : profileAction;
      assert.equal(actions(policy).email, expected, `${profileAction} then ${keyAction}`);
    }
  }
});

test('a profile default still applies to categories it does not name', () => {
  const policy = effectiveGuardPolicy(
    { default: 'redact' },
    { categories: { secret: 'block' } },
    DETECTORS,
  );
  assert.deepEqual(actions(policy), {
    email: 'redact',
    payment_card: 'redact',
    openai_api_key: 'block',
    jwt: 'block',
  });
});

test('effectivePolicy carries the key rules, null when the key has none', () => {
  const profile = profileSchema.parse({});
  const guard = { input: { categories: { pii: 'block' as const } } };
  assert.deepEqual(
    effectivePolicy(profile, { models: null, maxTokens: null, guard }).keyGuard,
    guard,
  );
  assert.equal(effectivePolicy(profile, { models: null, maxTokens: null }).keyGuard, null);
});
