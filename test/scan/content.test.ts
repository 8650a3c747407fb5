import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCorpus, optionsOf } from '../../scripts/guard-eval.js';
import { type ScanOptions, scanText } from '../../src/guard/index.js';
import { compileAllowList } from '../../src/scan/allow.js';
import { type ScanSession, scanPieces, scanWhole } from '../../src/scan/content.js';
import { scanRuleOptions } from '../../src/scan/rules.js';
import { emptyStats } from '../../src/scan/types.js';
import { TextWindow } from '../../src/scan/window.js';
import { fakeMistralKey } from './helpers.js';

function session(options: ScanOptions = scanRuleOptions()): ScanSession {
  return { options, allow: compileAllowList(), stats: emptyStats(), warn: () => {} };
}

// Line and column by the simplest possible count, to check the indexed one against.
function naive(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return `${line}:${offset - (before.lastIndexOf('\n') + 1) + 1}`;
}

async function* inPieces(text: string, size: number): AsyncGenerator<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}

test('the scanner reports what the content guard reports on the same texts, whole or streamed', async () => {
  const corpus = loadCorpus();
  assert.ok(corpus.length > 100);
  for (const c of corpus) {
    const options = optionsOf(c) ?? {};
    const guard = scanText(c.text, options).map(
      (f) => `${f.detector} ${naive(c.text, f.start)}-${naive(c.text, f.end)}`,
    );
    const origin = { file: 'corpus.txt', source: 'tree' as const };
    const whole = scanWhole(c.text, origin, session(options)).map(
      (f) => `${f.rule} ${f.line}:${f.column}-${f.endLine}:${f.endColumn}`,
    );
    const streamed = (await scanPieces(inPieces(c.text, 7), origin, session(options))).map(
      (f) => `${f.rule} ${f.line}:${f.column}-${f.endLine}:${f.endColumn}`,
    );
    // A corpus text carrying the allow marker would differ on purpose; none does.
    assert.deepEqual(whole, guard, c.id);
    assert.deepEqual(streamed, guard, c.id);
  }
});

test('by default the scanner runs the credential detectors only; --pii adds personal data', () => {
  const text = `mail jo@example.com, MISTRAL_API_KEY=${fakeMistralKey()}`;
  const rules = (s: ScanSession) =>
    scanWhole(text, { file: 'x', source: 'tree' }, s).map((f) => f.rule);
  assert.deepEqual(rules(session()), ['mistral_api_key']);
  assert.deepEqual(rules(session(scanRuleOptions({ pii: true }))), ['email', 'mistral_api_key']);
});

test('one value plain, JSON-escaped and URL-encoded has one fingerprint in one file', () => {
  const key = fakeMistralKey();
  const first = key.charCodeAt(0).toString(16);
  const texts = [
    `MISTRAL_API_KEY=${key}`,
    `{"mistral": "\\u00${first}${key.slice(1)}"}`,
    `?mistral_key=%${first}${key.slice(1)}`,
  ];
  const prints = texts.map(
    (text) => scanWhole(text, { file: 'same.txt', source: 'tree' }, session())[0]?.fingerprint,
  );
  assert.equal(new Set(prints).size, 1);
  assert.match(String(prints[0]), /^[0-9a-f]{32}$/);
});

test('a long stream is located exactly in flat memory, the allow marker split across pieces', async () => {
  const keys = [fakeMistralKey(), fakeMistralKey(), fakeMistralKey()];
  const filler = 'INFO request served in 12 ms\n'.repeat(40_000);
  const text = `${filler}MISTRAL_API_KEY=${keys[0]}\n${filler}MISTRAL_API_KEY=${keys[1]} # mistral-guard:allow\n${filler}mistral ${keys[2]}`;
  const s = session();
  const found = await scanPieces(inPieces(text, 4099), { file: 'app.log', source: 'log' }, s);
  assert.deepEqual(
    found.map((f) => `${f.line}:${f.column}`),
    [naive(text, text.indexOf(keys[0]!)), naive(text, text.indexOf(keys[2]!))],
  );
  assert.equal(s.stats.allowedInline, 1);
});

test('an allow comment never turns a random token on a nearby line into a Mistral key', async () => {
  const text = `value = "${fakeMistralKey()}"\n# mistral-guard:allow\n${fakeMistralKey()} = 1\n`;
  const origin = { file: 'a.py', source: 'tree' as const };
  assert.deepEqual(scanWhole(text, origin, session()), []);
  for (const size of [5, 19, 40]) {
    assert.deepEqual(await scanPieces(inPieces(text, size), origin, session()), [], `${size}`);
  }
});

test('text windows count CRLF lines as LF lines and columns in UTF-16 units', () => {
  const w = new TextWindow();
  w.push('ab\r\n');
  w.push('é😀x\nlast');
  assert.deepEqual(w.position(0), { line: 1, column: 1 });
  assert.deepEqual(w.position(4), { line: 2, column: 1 });
  assert.deepEqual(w.position(7), { line: 2, column: 4 });
  assert.deepEqual(w.position(9), { line: 3, column: 1 });
  assert.equal(w.slice(1, 6), 'b\r\né😀'.slice(0, 5));
});
