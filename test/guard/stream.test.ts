import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCorpus, optionsOf } from '../../scripts/guard-eval.js';
import type { ScanOptions } from '../../src/guard/index.js';
import { createStreamRedactor, redactStream, redactText } from '../../src/guard/index.js';

function streamed(pieces: string[], options?: ScanOptions): { text: string; outputs: string[] } {
  const r = createStreamRedactor(options);
  const outputs = pieces.map((p) => r.push(p));
  outputs.push(r.end());
  return { text: outputs.join(''), outputs };
}

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

const cases = loadCorpus();

test('a card number split over four chunks is never released in part', () => {
  const pieces = ['pay with 4111 ', '1111 11', '11 11', '11 please'];
  const { text, outputs } = streamed(pieces);
  assert.equal(text, 'pay with [REDACTED:CARD] please');
  for (const out of outputs) assert.doesNotMatch(out, /\d{2}/);
});

test('an email cut right after the @ is redacted whole', () => {
  const { text, outputs } = streamed(['write to jane.roe@', 'example.com today']);
  assert.equal(text, 'write to [REDACTED:EMAIL] today');
  assert.ok(!outputs.some((o) => o.includes('jane')));
});

test('streaming every corpus case split at every position equals redacting it whole', () => {
  for (const c of cases) {
    const options = optionsOf(c);
    const whole = redactText(c.text, options).text;
    for (let i = 0; i <= c.text.length; i++) {
      const got = streamed([c.text.slice(0, i), c.text.slice(i)], options).text;
      assert.equal(got, whole, `${c.id} split at ${i}`);
    }
  }
});

test('streaming the corpus in random small pieces equals redacting it whole', () => {
  const rand = seeded(7);
  const joined = cases.map((c) => c.text).join('\n-- \n');
  const whole = redactText(joined);
  for (let round = 0; round < 20; round++) {
    const pieces: string[] = [];
    for (let at = 0; at < joined.length; ) {
      const n = 1 + Math.floor(rand() * (round % 2 === 0 ? 8 : 300));
      pieces.push(joined.slice(at, at + n));
      at += n;
    }
    const r = createStreamRedactor();
    let out = '';
    for (const p of pieces) out += r.push(p);
    out += r.end();
    assert.equal(out, whole.text, `round ${round}`);
    assert.deepEqual(r.findings, whole.findings);
  }
});

test('a stream fed one character at a time never releases the first character of a value', () => {
  for (const c of cases.filter((x) => x.kind === 'positive' && x.expect.length === 1)) {
    const options = optionsOf(c);
    const start = c.expect[0]!.start;
    const r = createStreamRedactor(options);
    let out = '';
    for (const ch of c.text) {
      out += r.push(ch);
      if (out.length > start) assert.equal(out[start], '[', `${c.id} released part of a value`);
    }
    out += r.end();
    assert.equal(out, redactText(c.text, options).text, c.id);
  }
});

test('plain prose is held back by no more than the base tail', () => {
  const r = createStreamRedactor();
  const prose = 'The quick brown fox jumps over the lazy dog. '.repeat(20);
  const out = r.push(prose);
  assert.ok(prose.length - out.length <= 100, `held ${prose.length - out.length}`);
  assert.ok(r.maxHoldBack < 6000);
});

test('redactStream yields the same text as redactText', async () => {
  const text = cases
    .slice(0, 80)
    .map((c) => c.text)
    .join('\n');
  async function* pieces() {
    for (let i = 0; i < text.length; i += 13) yield text.slice(i, i + 13);
  }
  let out = '';
  for await (const piece of redactStream(pieces())) out += piece;
  assert.equal(out, redactText(text).text);
});
