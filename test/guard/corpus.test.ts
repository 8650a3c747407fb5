import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluate, loadCorpus, optionsOf } from '../../scripts/guard-eval.js';
import { scanText } from '../../src/guard/index.js';

const cases = loadCorpus();

test('the corpus holds at least 300 positive and 300 negative cases', () => {
  const positives = cases.filter((c) => c.kind === 'positive').length;
  assert.ok(positives >= 300, `${positives} positives`);
  assert.ok(cases.length - positives >= 300, `${cases.length - positives} negatives`);
});

test('the corpus covers split, escaped, encoded, look-alike, script and separator cases', () => {
  const tags = new Set(cases.flatMap((c) => c.tags));
  for (const tag of [
    'split',
    'escaped',
    'encoded',
    'base64',
    'lookalike',
    'zero-width',
    'adjacent-digit',
    'unicode',
    'separator',
  ]) {
    assert.ok(tags.has(tag), tag);
  }
});

test('overall recall is at least 0.97 and precision at least 0.95 on the corpus', () => {
  const { overall, misses, falseAlarms } = evaluate(cases);
  assert.ok(overall.recall >= 0.97, `recall ${overall.recall}, missed ${misses.join(' ')}`);
  assert.ok(overall.precision >= 0.95, `precision ${overall.precision}, ${falseAlarms.join(' ')}`);
});

test('every detector in the corpus keeps recall and precision above 0.9', () => {
  const { byDetector } = evaluate(cases);
  for (const [detector, s] of Object.entries(byDetector)) {
    assert.ok(s.recall >= 0.9 && s.precision >= 0.9, `${detector}: ${JSON.stringify(s)}`);
  }
});

test('32-character ids that are not Mistral keys are never reported as one', () => {
  const ids = cases.filter((c) => c.detector === 'mistral_api_key' && c.kind === 'negative');
  assert.ok(ids.length >= 30);
  const { falseAlarms } = evaluate(ids);
  assert.deepEqual(falseAlarms, []);
});

test('each value written out in the text is covered whole by its finding, not in part', () => {
  for (const c of cases.filter((x) => x.kind === 'positive' && !x.tags.includes('base64'))) {
    const findings = scanText(c.text, optionsOf(c));
    for (const e of c.expect) {
      const whole = findings.some(
        (f) => f.detector === e.detector && f.start <= e.start && f.end >= e.end,
      );
      assert.ok(whole, `${c.id}: ${c.text.slice(e.start, e.end)} not covered whole`);
    }
  }
});
