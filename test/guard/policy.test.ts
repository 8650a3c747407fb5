import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Finding } from '../../src/guard/index.js';
import { actionFor, decide, scanText } from '../../src/guard/index.js';

const policy = {
  default: 'flag',
  categories: { secret: 'block' },
  detectors: { email: 'redact' },
} as const;

function finding(detector: string, category: Finding['category']): Finding {
  return { detector, category, severity: 'high', start: 0, end: 1, preview: '****', label: 'X' };
}

test('no findings means allow', () => {
  assert.deepEqual(decide([], policy), {
    action: 'allow',
    byDetector: {},
    categories: { secret: 0, pii: 0 },
  });
});

test('a detector rule beats its category rule, which beats the default', () => {
  assert.equal(actionFor(finding('email', 'pii'), policy), 'redact');
  assert.equal(actionFor(finding('github_token', 'secret'), policy), 'block');
  assert.equal(actionFor(finding('phone_number', 'pii'), policy), 'flag');
  assert.equal(actionFor(finding('phone_number', 'pii'), {}), 'flag');
});

test('the strongest action wins and counts are kept per detector and category', () => {
  const decision = decide(
    scanText(
      'jane.roe@example.com, bob@example.org, MISTRAL_API_KEY=FAKEq9Zt3LmN7xYvB2cD8eF4gH6jK1pR',
    ),
    policy,
  );
  assert.equal(decision.action, 'block');
  assert.deepEqual(decision.byDetector, { email: 2, mistral_api_key: 1 });
  assert.deepEqual(decision.categories, { secret: 1, pii: 2 });
  assert.equal(decide([finding('email', 'pii')], policy).action, 'redact');
  assert.equal(decide([finding('x', 'pii')], { default: 'allow' }).action, 'allow');
});
