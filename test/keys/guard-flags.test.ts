import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGuard } from '../../src/cli/guard-flags.js';
import { UsageError } from '../../src/cli/output.js';

test('--guard rules split into categories and detectors per direction', () => {
  assert.deepEqual(parseGuard('input.pii=block, output.email=redact,input.secret=block'), {
    input: { categories: { pii: 'block', secret: 'block' } },
    output: { detectors: { email: 'redact' } },
  });
  assert.deepEqual(parseGuard('output.payment_card=flag'), {
    output: { detectors: { payment_card: 'flag' } },
  });
});

test('"default" clears the rules on update only', () => {
  assert.equal(parseGuard('default', true), null);
  assert.throws(() => parseGuard('default'), UsageError);
  assert.equal(parseGuard(undefined), null);
});

test('errors name the flag and the rule position, never the text', () => {
  const cases = [
    'input.pii=shout',
    'sideways.pii=block',
    'input.Sk-Secret-Value=block',
    'input.pii',
    '',
    ' , ',
    'input.pii=block,input.pii=redact',
  ];
  for (const value of cases) {
    assert.throws(
      () => parseGuard(value, true),
      (error: Error) => {
        assert.ok(error instanceof UsageError, value);
        assert.match(error.message, /^--guard /);
        assert.ok(!error.message.includes('Secret-Value'), 'the value was echoed');
        return true;
      },
    );
  }
  assert.match(
    (() => {
      try {
        parseGuard('input.pii=block,output.x=nope');
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })(),
    /rule 2/,
  );
});
