/**
 * Static and measured checks for user-supplied patterns, run once when rules are built. A
 * pattern is refused when it could make one scan slow: an unbounded quantifier (`*`, `+`,
 * `{n,}`), a quantified group that contains another quantifier (the shape behind catastrophic
 * backtracking), a back-reference, or a longest match above `maxLength`. It must then run over
 * adversarial strings within a time cap.
 */

export interface PatternShape {
  /** Longest possible match, in UTF-16 units. */
  maxLength: number;
}

interface Parsed {
  max: number;
  quantified: boolean;
}

const BRACES = /^\{(\d{1,5})(,(\d{0,5}))?\}/;
const LOOKAROUND = /^\?(?:[=!]|<[=!])/;
const BACKREF = /[1-9]/;

class Reader {
  at = 0;
  constructor(readonly src: string) {}
  peek(): string | undefined {
    return this.src[this.at];
  }
  fail(why: string): never {
    throw new TypeError(`unsafe custom pattern: ${why}`);
  }
}

function parseQuantifier(r: Reader): [number, number] | null {
  const c = r.peek();
  let range: [number, number] | null = null;
  if (c === '*' || c === '+') r.fail('unbounded quantifier; use {0,n} or {1,n}');
  if (c === '?') {
    r.at++;
    range = [0, 1];
  } else if (c === '{') {
    const m = BRACES.exec(r.src.slice(r.at, r.at + 14));
    if (m) {
      if (m[2] !== undefined && m[3] === '') r.fail('unbounded quantifier {n,}');
      range = [Number(m[1]), m[3] ? Number(m[3]) : Number(m[1])];
      r.at += m[0].length;
    }
  }
  if (range && r.peek() === '?') r.at++;
  return range;
}

function parseAtom(r: Reader): Parsed {
  const c = r.peek()!;
  if (c === '\\') {
    const n = r.src[r.at + 1];
    if (n === undefined) r.fail('trailing backslash');
    if (BACKREF.test(n) || n === 'k') r.fail('back-reference');
    if ((n === 'p' || n === 'P') && r.src[r.at + 2] === '{') {
      r.at = r.src.indexOf('}', r.at) + 1;
    } else if (n === 'u' && r.src[r.at + 2] === '{') {
      r.at = r.src.indexOf('}', r.at) + 1;
    } else {
      r.at += n === 'u' ? 6 : n === 'x' ? 4 : n === 'c' ? 3 : 2;
    }
    return { max: 1, quantified: false };
  }
  if (c === '[') {
    r.at++;
    if (r.peek() === '^') r.at++;
    if (r.peek() === ']') r.at++;
    while (r.at < r.src.length && r.peek() !== ']') r.at += r.peek() === '\\' ? 2 : 1;
    if (r.peek() !== ']') r.fail('unclosed character class');
    r.at++;
    return { max: 1, quantified: false };
  }
  if (c === '(') {
    r.at++;
    let lookaround = false;
    if (r.peek() === '?') {
      const kind = r.src.slice(r.at, r.at + 3);
      lookaround = LOOKAROUND.test(kind);
      if (kind.startsWith('?<') && !lookaround) r.at = r.src.indexOf('>', r.at) + 1;
      else r.at += kind.startsWith('?<') ? 3 : 2;
    }
    const inner = parseAlternation(r);
    if (r.peek() !== ')') r.fail('unclosed group');
    r.at++;
    return { max: lookaround ? 0 : inner.max, quantified: inner.quantified };
  }
  if (c === '^' || c === '$') {
    r.at++;
    return { max: 0, quantified: false };
  }
  r.at++;
  return { max: 1, quantified: false };
}

function parseSequence(r: Reader): Parsed {
  let max = 0;
  let quantified = false;
  while (r.at < r.src.length && r.peek() !== '|' && r.peek() !== ')') {
    const atom = parseAtom(r);
    const q = parseQuantifier(r);
    if (q) {
      if (atom.quantified && q[1] > 1) r.fail('nested quantifier');
      max += atom.max * q[1];
      quantified = true;
    } else {
      max += atom.max;
      quantified ||= atom.quantified;
    }
  }
  return { max, quantified };
}

function parseAlternation(r: Reader): Parsed {
  let result = parseSequence(r);
  while (r.peek() === '|') {
    r.at++;
    const next = parseSequence(r);
    result = {
      max: Math.max(result.max, next.max),
      quantified: result.quantified || next.quantified,
    };
  }
  return result;
}

const ADVERSARIAL = ['a', '0', ' ', '@', '=', 'a0', 'a.', '-_', 'aA0+/'];
const PROBE_LENGTH = 4096;
const PROBE_BUDGET_MS = 25;

/**
 * Checks a custom pattern and returns its longest match. Throws a TypeError naming the problem
 * (never any scanned text) when the pattern is unsafe or too slow.
 *
 * @example checkPattern(/EMP-\d{6}/g, 256).maxLength // 10
 */
export function checkPattern(re: RegExp, maxLength: number): PatternShape {
  const r = new Reader(re.source);
  const parsed = parseAlternation(r);
  if (r.at < r.src.length) r.fail('unbalanced parenthesis');
  if (parsed.max > maxLength) r.fail(`longest match ${parsed.max} is above ${maxLength}`);
  for (const unit of ADVERSARIAL) {
    const probe = unit.repeat(Math.ceil(PROBE_LENGTH / unit.length));
    const started = performance.now();
    re.lastIndex = 0;
    let guard = 0;
    for (let m = re.exec(probe); m !== null && guard < PROBE_LENGTH; m = re.exec(probe)) {
      if (m[0].length === 0) re.lastIndex++;
      guard++;
    }
    if (performance.now() - started > PROBE_BUDGET_MS) r.fail('too slow on a repetitive input');
  }
  return { maxLength: parsed.max };
}
