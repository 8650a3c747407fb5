import type { Category, Severity } from './types.js';

/** Reports a candidate span, in view offsets. */
export type Emit = (start: number, end: number) => void;

/**
 * One detector of the rule set. A detector is started in one of three ways, so that most text
 * never reaches its pattern:
 * - `onHit`: at each position where one of its `keywords` starts (the keyword is the start of
 *   the value or of its label, as in `sk-proj-` or `password=`);
 * - `inWindow`: over the text around its keyword hits (`lead` before, `reach` after), for values
 *   that only count near a word, such as a Mistral key near "mistral";
 * - `numeric`: over the text around clusters of at least `minDigits` digits.
 * Offsets are view offsets (normalised text); the engine maps them back to the original.
 */
export interface Detector {
  id: string;
  category: Category;
  severity: Severity;
  /** Placeholder label, as in `[REDACTED:EMAIL]`. */
  label: string;
  /** Wins overlaps: a specific format beats a generic one on the same characters. */
  priority: number;
  /** Off unless named in `enable` or `detectors`. */
  optIn?: boolean;
  /** ASCII keywords, matched case-insensitively by the pre-filter. */
  keywords?: string[];
  onHit?: (text: string, at: number, emit: Emit) => void;
  inWindow?: (text: string, from: number, to: number, hits: number[], emit: Emit) => void;
  /** Digits a value must contain at least; set for detectors started by digit clusters. */
  minDigits?: number;
  /** Runs over the whole text: only for custom patterns that name no keyword. */
  scanAll?: (text: string, emit: Emit) => void;
  /** How far before a keyword hit a value may start. */
  lead: number;
  /** How far after a keyword hit the value and what decides it may extend. */
  reach: number;
  /**
   * Characters of the tail a stream must keep even when no keyword was seen, because a value
   * may be complete while its decision waits for text still to come (a key before "mistral").
   */
  tailHold: number;
  /** How far before a value the decision may look (keyword, boundary, checks). */
  lookBehind: number;
  /** A masked hint built from the value; see `Finding.preview`. */
  preview: (value: string) => string;
}

/** Fields a detector module fills; the rest get defaults in `defineDetector`. */
export type DetectorSpec = Omit<
  Detector,
  'lead' | 'reach' | 'tailHold' | 'lookBehind' | 'preview'
> &
  Partial<Pick<Detector, 'lead' | 'reach' | 'tailHold' | 'lookBehind' | 'preview'>>;

/** Fills defaults: no lead, no tail hold, a fixed `****` preview. */
export function defineDetector(spec: DetectorSpec): Detector {
  return {
    lead: 0,
    reach: 0,
    tailHold: 0,
    lookBehind: 0,
    preview: () => '****',
    ...spec,
  };
}

/** Preview showing which known prefix a secret starts with, never any character after it. */
export function prefixPreview(prefixes: string[]): (value: string) => string {
  const sorted = [...prefixes].sort((a, b) => b.length - a.length);
  return (value) => {
    for (const p of sorted) if (value.startsWith(p)) return `${p}***`;
    return '****';
  };
}

/** Preview for personal data: the first two characters, then a mask. */
export function headPreview(value: string): string {
  return `${value.slice(0, 2)}***`;
}

export interface StickyOptions {
  /** True for characters that may not precede the value (it would be part of a longer token). */
  left?: (code: number) => boolean;
  /** True for characters that may not follow the value. */
  right?: (code: number) => boolean;
  /** The value is the last capture group, not the whole match (a label precedes it). */
  valueGroup?: boolean;
  validate?: (value: string, text: string, start: number, end: number) => boolean;
}

/**
 * An `onHit` that runs a sticky pattern exactly at the keyword hit. The pattern must carry the
 * `y` flag and bounded quantifiers only, so the work per hit is capped by the pattern's length.
 */
export function stickyAtHit(
  re: RegExp,
  options: StickyOptions = {},
): NonNullable<Detector['onHit']> {
  if (!re.sticky) throw new TypeError(`pattern for a keyword hit must be sticky: ${re.source}`);
  const { left, right, valueGroup, validate } = options;
  return (text, at, emit) => {
    if (left && at > 0 && left(text.charCodeAt(at - 1))) return;
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) return;
    const end = at + m[0].length;
    const start = valueGroup ? end - (m[m.length - 1] ?? '').length : at;
    if (right && end < text.length && right(text.charCodeAt(end))) return;
    if (validate && !validate(text.slice(start, end), text, start, end)) return;
    emit(start, end);
  };
}

/**
 * Runs a global pattern over `text[from, to)` and reports matches whose neighbours in the whole
 * text pass the boundary tests. After a rejected match the search resumes one character later,
 * so a window cut at a different place (a stream) finds the same accepted values.
 */
export function scanWindow(
  re: RegExp,
  text: string,
  from: number,
  to: number,
  accept: (start: number, end: number) => boolean,
  emit: Emit,
): void {
  const slice = text.slice(from, to);
  re.lastIndex = 0;
  for (let m = re.exec(slice); m !== null; m = re.exec(slice)) {
    const start = from + m.index;
    const end = start + m[0].length;
    if (accept(start, end)) emit(start, end);
    else re.lastIndex = m.index + 1;
    if (m[0].length === 0) re.lastIndex = m.index + 1;
  }
}
