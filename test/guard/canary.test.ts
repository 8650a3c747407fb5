import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCorpus, optionsOf } from '../../scripts/guard-eval.js';
import { isGuardError } from '../../src/errors.js';
import { inspectionFailed } from '../../src/guard/errors.js';
import { createStreamRedactor, redactText, scanText } from '../../src/guard/index.js';

const positives = loadCorpus().filter((c) => c.kind === 'positive');

test('findings, redacted text and stream output never contain a raw value', () => {
  for (const c of positives) {
    const options = optionsOf(c);
    const values = c.expect.map((e) => c.text.slice(e.start, e.end));
    const findings = JSON.stringify(scanText(c.text, options));
    const redacted = redactText(c.text, options).text;
    const r = createStreamRedactor(options);
    let streamed = '';
    for (let i = 0; i < c.text.length; i += 5) streamed += r.push(c.text.slice(i, i + 5));
    streamed += r.end();
    for (const v of values) {
      for (const [where, text] of Object.entries({ findings, redacted, streamed })) {
        assert.ok(!text.includes(v), `${c.id}: value in ${where}`);
      }
      // Previews show at most a known prefix or two characters, never most of the value.
      for (const f of scanText(c.text, options)) assert.ok(f.preview.length <= 30, f.preview);
    }
  }
});

test('an internal failure becomes inspection_failed without the message of the cause', () => {
  const secret = 'FAKEq9Zt3LmN7xYvB2cD8eF4gH6jK1pR';
  let parseError: unknown;
  try {
    JSON.parse(`{"key": ${secret}}`);
  } catch (e) {
    parseError = e;
  }
  const err = inspectionFailed(parseError);
  assert.ok(isGuardError(err, 'inspection_failed'));
  const everything = `${err.message} ${String(err.stack)} ${String((err.cause as Error).message)} ${String((err.cause as Error).stack)}`;
  assert.ok(!everything.includes(secret));
});

test('scanning a value that is not a string fails closed with inspection_failed', () => {
  assert.throws(
    () => scanText(42 as unknown as string),
    (e: unknown) => isGuardError(e, 'inspection_failed'),
  );
});
