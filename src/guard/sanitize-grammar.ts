/**
 * The markup constructs the output sanitiser rewrites, as bounded regular expressions, and the
 * test a stream needs: whether an opener near the end of the text received so far may still
 * start a construct once more text arrives. Each construct has a length bound, so a match costs
 * at most that bound and a stream never holds more than the longest of them.
 */

// Bounds, in characters or repetitions, of the parts of a construct.
const TEXT_UNITS = 500;
const LABEL_UNITS = 999;
const URL_CHARS = 2048;
const TITLE_CHARS = 500;
const ATTR_CHARS = 1024;
const BLOCK_BODY = 4096;
const SPACES = 32;
// A blockquote or list prefix before a reference definition: `> > `, or list indentation.
const LINE_PREFIX = 64;

// Optional white space holding at most one line break; WS1 is the same but not empty.
const WS = `[ \\t]{0,${SPACES}}(?:\\n[ \\t]{0,${SPACES}})?`;
const WS1 = `(?:[ \\t]{1,${SPACES}}(?:\\n[ \\t]{0,${SPACES}})?|\\n[ \\t]{0,${SPACES}})`;
const WS_MAX = 2 * SPACES + 1;

// `![text](<url> "title")` and `[text](url 'title')`, not after a backslash. The text may hold
// backslash escapes but no bracket, so nested brackets are left to the final escaping.
const INLINE =
  String.raw`(?:(?<bang>!)\[(?<!\\!\[)|\[(?<!\\\[))(?<text>(?:[^\[\]\\\n]|\\[^\n]){0,${TEXT_UNITS}})\]\(${WS}` +
  String.raw`(?:<(?<purl>[^<>\n]{0,${URL_CHARS}})>|(?<url>[^\s()<>]{1,${URL_CHARS}}(?:\([^\s()]{0,256}\)[^\s()<>]{0,256})?))` +
  String.raw`(?:${WS1}(?:"(?<tq>[^"\n]{0,${TITLE_CHARS}})"|'(?<ts>[^'\n]{0,${TITLE_CHARS}})'|\((?<tp>[^()\n]{0,${TITLE_CHARS}})\)))?${WS}\)`;
const INLINE_MAX =
  2 + 2 * TEXT_UNITS + 2 + WS_MAX + URL_CHARS + 514 + WS_MAX + TITLE_CHARS + 2 + WS_MAX + 1;

// `[label]: url "title"` at a line start, also inside blockquotes and list items, with the URL
// on the same line or the next. A title on a later line is left as text.
const LINE_START = String.raw`\[(?<=(?:^|\n)[ \t>]{0,${LINE_PREFIX}}\[)`;
const REF_TITLE = String.raw`(?:[ \t]{1,${SPACES}}(?:"(?<rq>[^"\n]{0,${TITLE_CHARS}})"|'(?<rs>[^'\n]{0,${TITLE_CHARS}})'|\((?<rp>[^()\n]{0,${TITLE_CHARS}})\)))?`;
const REF_DEF =
  String.raw`${LINE_START}(?<label>(?:[^\[\]\\\n]|\\[^\n]){1,${LABEL_UNITS}})\]:[ \t]{0,${SPACES}}(?:\n[ \t>]{0,${LINE_PREFIX}})?` +
  String.raw`(?:<(?<rpurl>[^<>\n]{0,${URL_CHARS}})>|(?<rurl>[^\s<]\S{0,${URL_CHARS - 1}}))${REF_TITLE}`;
const REF_TAIL = SPACES + TITLE_CHARS + 2;
const REF_MAX = 2 * LABEL_UNITS + 3 + SPACES + 1 + LINE_PREFIX + URL_CHARS + 2 + REF_TAIL;

const AUTOLINK = String.raw`<(?<auto>(?:https?|ftp|mailto|data|javascript|vbscript|file):[^\s<>]{1,${URL_CHARS}})>`;
const BLOCK = String.raw`<(?<block>script|style)\b[^>]{0,${ATTR_CHARS}}>[\s\S]{0,${BLOCK_BODY}}?</\k<block>\s{0,8}>`;
const BLOCK_MAX = 8 + ATTR_CHARS + 1 + BLOCK_BODY + 9 + 8;
const COMMENT = String.raw`(?<comment><!--[\s\S]{0,${BLOCK_BODY}}?-->)`;
const COMMENT_MAX = BLOCK_BODY + 7;
const TAG = String.raw`</?(?<tag>[A-Za-z][A-Za-z0-9-]{0,32})(?:\s[^<>]{0,${ATTR_CHARS}})?/?>`;
const ANGLE_MAX = Math.max(URL_CHARS + 20, ATTR_CHARS + 40);

const ALL = `${INLINE}|${REF_DEF}|${AUTOLINK}|${BLOCK}|${COMMENT}|${TAG}`;
/** Every construct, leftmost first; named groups tell which one matched. */
export const CONSTRUCTS = new RegExp(ALL, 'gi');
/**
 * The same, at one position and with group offsets, for splitting a match already found. Kept
 * apart because offsets measured twice as slow on every scan, while few matches need them.
 */
export const CONSTRUCT_AT = new RegExp(ALL, 'iyd');
const INLINE_AT = new RegExp(INLINE, 'y');
const LINE_START_AT = new RegExp(LINE_START, 'y');

/** Longest construct the sanitiser rewrites, which bounds the stream hold-back. */
export const SANITIZE_HOLD_BACK = Math.max(INLINE_MAX, REF_MAX, BLOCK_MAX, COMMENT_MAX, ANGLE_MAX);

/** Characters that may open a construct: `!` and `[` (markdown), `<` (HTML, autolinks). */
export const OPENERS = /[![<]/g;

const BANG = 33;
const LT = 60;
const GT = 62;
const OPEN = 91;
const BACKSLASH = 92;
const CLOSE = 93;
const PAREN = 40;
const COLON = 58;
const NEWLINE = 10;
const SLASH = 47;

// Suffixes that complete an inline link from any state it can be in at the end of the text:
// in the text (with or without a pending escape), after `]`, in the white space, in either form
// of URL or its bracketed part, in any form of title. If none completes it, nothing will.
const COMPLETIONS = ['](x)', 'x](x)', '(x)', 'x)', ')', '>)', '))', '")', "')"];

/** Tests whether openers near the end of one text may still start a construct. */
export class OpenConstructs {
  readonly #text: string;
  readonly #completed = new Map<string, string>();

  constructor(text: string) {
    this.#text = text;
  }

  /** Whether the opener at `at` (which no construct matched) may start one with more text. */
  mayStart(at: number): boolean {
    const text = this.#text;
    const c = text.charCodeAt(at);
    if (c === BANG) {
      if (at + 1 === text.length) return true;
      if (text.charCodeAt(at + 1) !== OPEN || text.charCodeAt(at - 1) === BACKSLASH) return false;
      return this.#bracket(at + 1);
    }
    return c === OPEN ? this.#bracket(at) : this.#angle(at);
  }

  /**
   * Whether a match at `m.index` could still turn into another one: it touches the end, or a
   * title may still follow a reference definition, or a `<script>` tag may still get its body.
   */
  mayChange(m: RegExpExecArray): boolean {
    const text = this.#text;
    const end = m.index + m[0].length;
    if (end >= text.length) return true;
    const g = m.groups!;
    if (g.label !== undefined) {
      return text.indexOf('\n', end) < 0 && text.length - end < REF_TAIL;
    }
    if (g.tag !== undefined && text.charCodeAt(m.index + 1) !== SLASH) {
      const tag = g.tag.toLowerCase();
      return (tag === 'script' || tag === 'style') && text.length - m.index < BLOCK_MAX;
    }
    return false;
  }

  #bracket(at: number): boolean {
    const text = this.#text;
    if (text.charCodeAt(at - 1) === BACKSLASH) return false;
    const limit = at + 2 + 2 * LABEL_UNITS;
    let i = at + 1;
    while (i < text.length && i < limit) {
      const c = text.charCodeAt(i);
      if (c === CLOSE) break;
      if (c === OPEN || c === NEWLINE) return false;
      i += c === BACKSLASH ? 2 : 1;
    }
    if (i >= limit) return false;
    if (i >= text.length || i + 1 === text.length) return true;
    const after = text.charCodeAt(i + 1);
    if (after === PAREN) return this.#inline(at);
    return after === COLON && this.#refDef(at, i + 2);
  }

  #inline(at: number): boolean {
    if (this.#text.length - at >= INLINE_MAX) return false;
    for (const suffix of COMPLETIONS) {
      let completed = this.#completed.get(suffix);
      if (completed === undefined) {
        completed = this.#text + suffix;
        this.#completed.set(suffix, completed);
      }
      INLINE_AT.lastIndex = at;
      if (INLINE_AT.test(completed)) return true;
    }
    return false;
  }

  // A definition is settled once the line of its URL is complete: the URL follows the colon on
  // the same line, or on the next line when nothing but white space does.
  #refDef(at: number, from: number): boolean {
    const text = this.#text;
    LINE_START_AT.lastIndex = at;
    if (!LINE_START_AT.test(text) || text.length - at >= REF_MAX) return false;
    const first = text.indexOf('\n', from);
    if (first < 0) return true;
    if (!/^[ \t]*$/.test(text.slice(from, first))) return false;
    return text.indexOf('\n', first + 1) < 0;
  }

  #angle(at: number): boolean {
    const text = this.#text;
    const rest = text.length - at;
    if (rest === 1) return true;
    if (text.startsWith('<!--', at)) return rest < COMMENT_MAX;
    if (rest < 4 && '<!--'.startsWith(text.slice(at))) return true;
    const head = text.slice(at + 1, at + 8).toLowerCase();
    for (const block of ['script', 'style']) {
      if (head.length < block.length && block.startsWith(head)) return true;
      if (head.startsWith(block)) {
        const next = text.charCodeAt(at + 1 + block.length);
        if (Number.isNaN(next)) return true;
        if (!/\w/.test(String.fromCharCode(next))) return rest < BLOCK_MAX;
      }
    }
    let i = at + 1;
    if (text.charCodeAt(i) === SLASH) i++;
    if (i === text.length) return true;
    if (!/[A-Za-z]/.test(text[i]!)) return false;
    // A tag or an autolink ends at its first `>` and holds no `<`: the regex has seen a closed
    // one and refused it, or it is still open.
    const limit = Math.min(text.length, at + ANGLE_MAX);
    for (let k = i; k < limit; k++) {
      const c = text.charCodeAt(k);
      if (c === LT || c === GT) return false;
    }
    return limit === text.length;
  }
}
