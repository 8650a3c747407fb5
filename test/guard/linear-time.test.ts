import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scanText } from '../../src/guard/index.js';

// Units repeated up to the size under test; each aims at one weak spot of a pattern engine.
const ADVERSARIAL: Record<string, string> = {
  digits: '0123456789',
  'digit groups': '4111 1111 ',
  'at signs': '@',
  'local@local': 'a.b@',
  equals: '=',
  spaces: ' ',
  separators: '-.-/ ',
  'base64 run': 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0',
  'keyword run': 'mistral ',
  assignments: 'password=',
  'jwt starts': 'eyJ',
  'pem headers': '-----BEGIN PRIVATE KEY-----',
  'sk prefixes': 'sk-',
  'phone-like': '+1 (',
  escapes: '\\u00',
  percent: '%4',
  'long line': 'the quick brown fox 12 jumps; ',
};

function timeScan(text: string): number {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    scanText(text);
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

const MB = 1 << 20;

test('scan time grows about linearly from 1 MB to 4 MB on adversarial input', () => {
  for (const [name, unit] of Object.entries(ADVERSARIAL)) {
    const one = unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);
    const four = one.repeat(4);
    const t1 = Math.max(timeScan(one), 1);
    const t4 = timeScan(four);
    assert.ok(t4 / t1 < 6, `${name}: 1 MB ${t1.toFixed(1)} ms, 4 MB ${t4.toFixed(1)} ms`);
  }
});
