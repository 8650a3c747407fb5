import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCorpus, optionsOf } from '../../scripts/guard-eval.js';
import { scanWork } from '../../src/guard/engine.js';
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
  assert.ok(r.maxHoldBack < 6500);
});

test('plain prose in small pieces is held back by about 100 characters at most', () => {
  const r = createStreamRedactor();
  const prose = 'The quick brown fox jumps over the lazy dog. '.repeat(40);
  let out = '';
  for (let i = 0; i < prose.length; i += 3) {
    out += r.push(prose.slice(i, i + 3));
    const pushed = Math.min(prose.length, i + 3);
    assert.ok(pushed - out.length <= 100, `held ${pushed - out.length} after ${pushed}`);
  }
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

// Characters the redactor scans for an input streamed in 4-character pieces.
function streamedWork(text: string): number {
  const before = scanWork.characters;
  const r = createStreamRedactor();
  for (let i = 0; i < text.length; i += 4) r.push(text.slice(i, i + 4));
  r.end();
  return scanWork.characters - before;
}

test('stream redaction work grows linearly with the input, whatever is held back', () => {
  const rand = seeded(11);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let base64 = '';
  while (base64.length < 200_000) base64 += alphabet[Math.floor(rand() * 64)];
  const units: Record<string, string> = {
    'one base64 run': base64,
    prose: 'The quick brown fox jumps over the lazy dog. ',
    'jwt starts': 'eyJhbGciOi ',
    'at signs': 'jo@',
    'key words': 'password mistral ',
  };
  for (const [name, unit] of Object.entries(units)) {
    const big = unit.repeat(Math.ceil(200_000 / unit.length)).slice(0, 200_000);
    const small = big.slice(0, 50_000);
    const w50 = streamedWork(small);
    const w200 = streamedWork(big);
    assert.ok(w200 / w50 < 5, `${name}: 50K scanned ${w50}, 200K scanned ${w200}`);
    assert.ok(w200 / big.length < 100, `${name}: ${(w200 / big.length).toFixed(0)} per character`);
  }
});

test('the hold-back never exceeds maxHoldBack, even on a base64 run longer than any value', () => {
  const rand = seeded(5);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let run = '';
  while (run.length < 30_000) run += alphabet[Math.floor(rand() * 64)];
  const jwtish = 'eyJhbGciOiJIUzI1NiJ9.'.repeat(1500);
  for (const text of [run, jwtish, `x ${run.slice(0, 1020)} y`.repeat(20)]) {
    const r = createStreamRedactor();
    let out = '';
    for (let i = 0; i < text.length; i += 4) {
      out += r.push(text.slice(i, i + 4));
      const held = Math.min(text.length, i + 4) - out.length;
      assert.ok(held <= r.maxHoldBack, `held ${held} of ${r.maxHoldBack}`);
    }
    assert.equal(out + r.end(), redactText(text).text);
  }
});
