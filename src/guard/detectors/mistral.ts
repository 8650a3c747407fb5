import { charClasses, DIGIT, entropy, isAlnum, isHex, isWord, LOWER, UPPER } from '../checks.js';
import { type Detector, defineDetector } from '../detector.js';

/**
 * Mistral API keys: 32 letters and digits with no prefix and no checksum, so the shape alone
 * matches git SHAs cut short, hex hashes, UUIDs without dashes and request ids. A candidate is
 * only reported near the word "mistral" (which also covers `MISTRAL_API_KEY`), and only when it
 * looks random base62: upper case, lower case and digits all present, not hexadecimal, and high
 * entropy. Hex ids next to "mistral" (a request id in a log line) are thereby left alone.
 */

const KEY_LENGTH = 32;
const KEYWORD = 'mistral';
// How far the key may sit after the end of the keyword (`MISTRAL_API_KEY = "…"`, a long
// `MISTRAL_API_KEY_FOR_THE_BILLING_SERVICE_OF_APP=…` name, a YAML
// block) and before its start (`"key": "…", "provider": "mistral"`).
const AFTER_GAP = 64;
const BEFORE_GAP = 24;
// A random 32-character base62 string has about 4.6 bits of entropy per character; 3.5 keeps
// over 99.9% of them and drops ids with repeated runs.
const MIN_ENTROPY = 3.5;

function looksRandomBase62(value: string): boolean {
  const mask = charClasses(value);
  if ((mask & (LOWER | UPPER | DIGIT)) !== (LOWER | UPPER | DIGIT)) return false;
  return !isHex(value) && entropy(value) >= MIN_ENTROPY;
}

// True when a keyword hit (sorted offsets) lies close enough before or after the candidate.
function nearKeyword(hits: number[], start: number, end: number): boolean {
  let lo = 0;
  let hi = hits.length;
  const earliest = start - AFTER_GAP - KEYWORD.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (hits[mid]! < earliest) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < hits.length; i++) {
    const h = hits[i]!;
    if (h > end + BEFORE_GAP) return false;
    if (h + KEYWORD.length <= start || h >= end) return true;
  }
  return false;
}

/** Detector for Mistral API keys next to a Mistral keyword. */
export const mistralApiKey: Detector = defineDetector({
  id: 'mistral_api_key',
  category: 'secret',
  severity: 'critical',
  label: 'MISTRAL_KEY',
  priority: 80,
  keywords: [KEYWORD],
  lead: BEFORE_GAP + KEY_LENGTH + 1,
  reach: KEYWORD.length + AFTER_GAP + KEY_LENGTH + 1,
  tailHold: KEY_LENGTH + BEFORE_GAP + KEYWORD.length + 1,
  lookBehind: KEYWORD.length + AFTER_GAP + 1,
  inWindow(text, from, to, hits, emit) {
    // A loop over run lengths: "mistral" is a common word in this gateway's traffic, and this
    // measured several times faster than a look-behind regex over the same window.
    let run = 0;
    for (let i = from; i <= to; i++) {
      const c = i < text.length ? text.charCodeAt(i) : 32;
      if (isAlnum(c)) {
        run++;
        continue;
      }
      const start = i - run;
      const clean = c !== 95 && (start === 0 || !isWord(text.charCodeAt(start - 1)));
      if (run === KEY_LENGTH && clean && i <= to && nearKeyword(hits, start, i)) {
        if (looksRandomBase62(text.slice(start, i))) emit(start, i);
      }
      run = 0;
    }
  },
});
