/**
 * The text the detectors read: Unicode NFKC, invisible characters dropped, look-alike letters
 * folded to Latin, digits of every script folded to ASCII, and JSON (`\u0040`, `\"`) and URL
 * (`%40`) escapes decoded, in one pass. Every detector works on this view, and a segment map
 * sends view offsets back to the original text, so findings always point at what the caller
 * sent.
 */

/** A normalised text and the map from its offsets to the original's. */
export interface View {
  text: string;
  /** True when the view is the original text unchanged, so offsets map to themselves. */
  identity: boolean;
  // Segment k covers view [segView[k], segView[k+1]) and original [segOrig[k], segOrigEnd[k]).
  // A segment is either a run copied unchanged (view and original lengths equal) or one
  // original unit (a character, an escape) replaced by zero or more view characters.
  segView: number[];
  segOrig: number[];
  segOrigEnd: number[];
  segCopied: boolean[];
}

// Characters that render as nothing or almost nothing and are used to split a value so that a
// plain pattern misses it: zero-width space, joiners, word joiner, BOM, soft hyphen, Mongolian
// vowel separator.
const INVISIBLE = new Set([0x200b, 0x200c, 0x200d, 0x2060, 0xfeff, 0x00ad, 0x180e]);

// Cyrillic and Greek letters that look like Latin ones. NFKC leaves them alone because they are
// distinct letters, so they are folded here: `mistrаl` with a Cyrillic `а` must still match.
const HOMOGLYPHS: Record<string, string> = {
  а: 'a',
  е: 'e',
  к: 'k',
  м: 'M',
  н: 'H',
  о: 'o',
  р: 'p',
  с: 'c',
  т: 'T',
  у: 'y',
  х: 'x',
  і: 'i',
  ј: 'j',
  ѕ: 's',
  ԁ: 'd',
  ԛ: 'q',
  ԝ: 'w',
  һ: 'h',
  ӏ: 'l',
  А: 'A',
  В: 'B',
  Е: 'E',
  К: 'K',
  М: 'M',
  Н: 'H',
  О: 'O',
  Р: 'P',
  С: 'C',
  Т: 'T',
  Х: 'X',
  У: 'Y',
  І: 'I',
  Ј: 'J',
  Ѕ: 'S',
  Ԁ: 'D',
  Α: 'A',
  Β: 'B',
  Ε: 'E',
  Ζ: 'Z',
  Η: 'H',
  Ι: 'I',
  Κ: 'K',
  Μ: 'M',
  Ν: 'N',
  Ο: 'O',
  Ρ: 'P',
  Τ: 'T',
  Υ: 'Y',
  Χ: 'X',
  ο: 'o',
  ν: 'v',
  ρ: 'p',
  ι: 'i',
  κ: 'k',
  α: 'a',
  υ: 'u',
};

// Fast-path test: plain ASCII with no escape introducer needs no view at all. Measured as the
// common case for chat prompts, it skips the per-character loop entirely.
const NEEDS_WORK = /[^\x00-\x24\x26-\x5b\x5d-\x7f]/;
const NEXT_WORK = /[^\x00-\x24\x26-\x5b\x5d-\x7f]/g;

const foldCache = new Map<string, string>();
const DECIMAL = /^\p{Nd}$/u;

// The ASCII digit of a decimal digit of another script (Arabic-Indic `٤`, Devanagari `४`), which
// NFKC leaves alone. Unicode encodes each script's digits as a run of ten from zero, and runs that
// touch are whole runs too, so the value is the distance from the start of the run modulo 10.
function asciiDigit(c: string, cp: number): string | null {
  if (cp < 0x80 || !DECIMAL.test(c)) return null;
  let zero = cp;
  while (zero > 0 && DECIMAL.test(String.fromCodePoint(zero - 1))) zero--;
  return String((cp - zero) % 10);
}

function foldChar(ch: string): string {
  let out = foldCache.get(ch);
  if (out !== undefined) return out;
  out = ch.normalize('NFKC');
  let folded = '';
  for (const c of out) {
    const cp = c.codePointAt(0)!;
    if (INVISIBLE.has(cp)) continue;
    folded += HOMOGLYPHS[c] ?? asciiDigit(c, cp) ?? c;
  }
  if (foldCache.size < 4096) foldCache.set(ch, folded);
  return folded;
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  const lower = code | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

function hexAt(text: string, at: number, digits: number): number {
  if (at + digits > text.length) return -1;
  let value = 0;
  for (let i = 0; i < digits; i++) {
    const v = hexValue(text.charCodeAt(at + i));
    if (v < 0) return -1;
    value = value * 16 + v;
  }
  return value;
}

const JSON_SIMPLE: Record<string, string> = {
  '"': '"',
  "'": "'",
  '\\': '\\',
  '/': '/',
  n: '\n',
  r: '\r',
  t: '\t',
  b: '\b',
  f: '\f',
};

// Decodes `%XX` sequences forming one UTF-8 character. Returns the character and the number of
// original code units consumed, or null when the bytes are not valid UTF-8.
function percentAt(text: string, at: number): [string, number] | null {
  const first = hexAt(text, at + 1, 2);
  if (first < 0) return null;
  if (first < 0x80) return [String.fromCharCode(first), 3];
  const extra = first >= 0xf0 ? 3 : first >= 0xe0 ? 2 : first >= 0xc0 ? 1 : -1;
  if (extra < 0) return null;
  const bytes = [first];
  for (let k = 1; k <= extra; k++) {
    const pos = at + 3 * k;
    if (text.charCodeAt(pos) !== 37) return null;
    const b = hexAt(text, pos + 1, 2);
    if (b < 0x80 || b > 0xbf) return null;
    bytes.push(b);
  }
  const decoded = Buffer.from(bytes).toString('utf8');
  return decoded.includes('\ufffd') ? null : [decoded, 3 * (extra + 1)];
}

// Decodes one escape starting at a backslash: the replacement and the code units consumed.
function escapeAt(text: string, at: number): [string, number] | null {
  const next = text[at + 1];
  if (next === undefined) return null;
  if (next === 'u') {
    const cp = hexAt(text, at + 2, 4);
    if (cp < 0) return null;
    // A surrogate pair written as two escapes, as JSON encoders emit for astral characters.
    if (cp >= 0xd800 && cp < 0xdc00 && text.startsWith('\\u', at + 6)) {
      const low = hexAt(text, at + 8, 4);
      if (low >= 0xdc00 && low < 0xe000) return [String.fromCharCode(cp, low), 12];
    }
    return [String.fromCharCode(cp), 6];
  }
  if (next === 'x') {
    const cp = hexAt(text, at + 2, 2);
    return cp < 0 ? null : [String.fromCharCode(cp), 4];
  }
  const simple = JSON_SIMPLE[next];
  return simple === undefined ? null : [simple, 2];
}

/**
 * Builds the view of `text`. Plain ASCII without `\` or `%` is returned as is, with no map.
 * Folding works per character (NFKC of each code point), which differs from whole-string NFKC
 * only for combining sequences that no detector pattern contains.
 */
export function buildView(text: string): View {
  if (!NEEDS_WORK.test(text)) {
    return { text, identity: true, segView: [], segOrig: [], segOrigEnd: [], segCopied: [] };
  }
  const parts: string[] = [];
  const view: View = {
    text: '',
    identity: false,
    segView: [],
    segOrig: [],
    segOrigEnd: [],
    segCopied: [],
  };
  let viewLength = 0;
  let runStart = 0;
  const flushRun = (end: number): void => {
    if (end <= runStart) return;
    view.segView.push(viewLength);
    view.segOrig.push(runStart);
    view.segOrigEnd.push(end);
    view.segCopied.push(true);
    parts.push(text.slice(runStart, end));
    viewLength += end - runStart;
  };
  const replace = (at: number, consumed: number, out: string): void => {
    flushRun(at);
    if (out.length > 0) {
      view.segView.push(viewLength);
      view.segOrig.push(at);
      view.segOrigEnd.push(at + consumed);
      view.segCopied.push(false);
      parts.push(out);
      viewLength += out.length;
    }
    runStart = at + consumed;
  };
  const length = text.length;
  // Jump from one character that may need work to the next with a regex scan, which is far
  // faster than a JavaScript loop over the plain ASCII in between.
  const next = NEXT_WORK;
  next.lastIndex = 0;
  for (let m = next.exec(text); m !== null; m = next.exec(text)) {
    const i = m.index;
    const code = text.charCodeAt(i);
    if (code < 0x80) {
      const decoded = code === 92 ? escapeAt(text, i) : percentAt(text, i);
      if (decoded) {
        const folded =
          decoded[0].length === 1 && decoded[0] < '\x80' ? decoded[0] : foldChar(decoded[0]);
        replace(i, decoded[1], folded);
        next.lastIndex = i + decoded[1];
      }
      continue;
    }
    const width = code >= 0xd800 && code < 0xdc00 && i + 1 < length ? 2 : 1;
    const ch = width === 2 ? text.slice(i, i + 2) : text[i]!;
    const folded = foldChar(ch);
    if (folded !== ch) replace(i, width, folded);
    next.lastIndex = i + width;
  }
  if (view.segView.length === 0) {
    // Nothing changed (accented letters, a stray `%`): the text is its own view.
    return { text, identity: true, segView: [], segOrig: [], segOrigEnd: [], segCopied: [] };
  }
  flushRun(length);
  view.text = parts.join('');
  return view;
}

function segmentOf(view: View, at: number): number {
  const seg = view.segView;
  let lo = 0;
  let hi = seg.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (seg[mid]! <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The original offset where the view character at `at` begins. */
export function originalStart(view: View, at: number): number {
  if (view.identity) return at;
  if (view.segView.length === 0) return 0;
  if (at >= view.text.length) return view.segOrigEnd[view.segOrigEnd.length - 1]!;
  const k = segmentOf(view, at);
  return view.segCopied[k] ? view.segOrig[k]! + (at - view.segView[k]!) : view.segOrig[k]!;
}

/** The original offset just past the view character at `at - 1` (for exclusive ends). */
export function originalEnd(view: View, at: number): number {
  if (view.identity) return at;
  if (at <= 0 || view.segView.length === 0) return 0;
  const k = segmentOf(view, at - 1);
  return view.segCopied[k] ? view.segOrig[k]! + (at - view.segView[k]!) : view.segOrigEnd[k]!;
}
