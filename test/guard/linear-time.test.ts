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

// CPU milliseconds of the fastest of `rounds` scans of each text, taken in turn so that a burst
// of load on a shared machine slows both sizes alike.
function bestTimes(texts: string[], rounds = 5): number[] {
  const best = texts.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    texts.forEach((text, i) => {
      const started = process.cpuUsage();
      scanText(text);
      const used = process.cpuUsage(started);
      best[i] = Math.min(best[i]!, (used.user + used.system) / 1000);
    });
  }
  return best;
}

const MB = 1 << 20;

// Linear work takes about 4 times as long on 4 times the input; a quadratic pattern takes 16.
test('scan time grows about linearly from 1 MB to 4 MB on adversarial input', () => {
  for (const [name, unit] of Object.entries(ADVERSARIAL)) {
    const one = unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);
    const [t1, t4] = bestTimes([one, one.repeat(4)]);
    const ratio = t4! / Math.max(t1!, 1);
    assert.ok(ratio < 8, `${name}: 1 MB ${t1!.toFixed(1)} ms, 4 MB ${t4!.toFixed(1)} ms`);
  }
});
