import { isWord } from '../checks.js';
import { type Detector, defineDetector, scanWindow } from '../detector.js';
import { checkPattern } from '../regex-safety.js';
import type { CustomPattern, CustomWordList } from '../types.js';

/** Longest match a custom pattern may have: it bounds the stream hold-back. */
export const MAX_CUSTOM_MATCH = 512;
const ID = /^[a-z][a-z0-9_]{0,63}$/;
const ASCII_WORD = /^[\x20-\x7e]{1,128}$/;

const SCAN_FLAGS = /[gy]/g;

function checkId(id: string): void {
  if (!ID.test(id)) throw new TypeError(`custom detector id must match ${ID.source}: ${id}`);
}

/**
 * Compiles a custom pattern into a detector, after the safety checks of `checkPattern`. With
 * keywords, the pattern runs only around their hits; without, it runs over every text.
 */
export function customPatternDetector(spec: CustomPattern): Detector {
  checkId(spec.id);
  const source = typeof spec.pattern === 'string' ? spec.pattern : spec.pattern.source;
  const flags = typeof spec.pattern === 'string' ? '' : spec.pattern.flags.replace(SCAN_FLAGS, '');
  const re = new RegExp(source, `${flags}g`);
  const { maxLength } = checkPattern(re, MAX_CUSTOM_MATCH);
  const keywords = spec.keywords?.map((k) => k.toLowerCase());
  if (keywords?.some((k) => !ASCII_WORD.test(k))) {
    throw new TypeError(`custom detector ${spec.id}: keywords must be printable ASCII`);
  }
  const run = (text: string, from: number, to: number, emit: (s: number, e: number) => void) =>
    scanWindow(re, text, from, to, (s, e) => e > s, emit);
  const base = {
    id: spec.id,
    category: spec.category ?? 'secret',
    severity: spec.severity ?? 'high',
    label: spec.label ?? spec.id.toUpperCase(),
    priority: 65,
    lookBehind: maxLength + 1,
  } as const;
  if (keywords && keywords.length > 0) {
    return defineDetector({
      ...base,
      keywords,
      lead: maxLength,
      reach: maxLength + 1,
      tailHold: maxLength + 1,
      inWindow: (text, from, to, _hits, emit) => run(text, from, to, emit),
    });
  }
  return defineDetector({
    ...base,
    tailHold: maxLength + 1,
    scanAll: (text, emit) => run(text, 0, text.length, emit),
  });
}

/** Compiles a word list into a detector reporting each word where it stands as a whole word. */
export function customWordDetector(spec: CustomWordList): Detector {
  checkId(spec.id);
  const words = spec.words.map((w) => w.toLowerCase());
  if (words.length === 0 || words.some((w) => !ASCII_WORD.test(w))) {
    throw new TypeError(`custom word list ${spec.id}: words must be 1-128 printable ASCII chars`);
  }
  const longest = Math.max(...words.map((w) => w.length));
  const lengths = [...new Set(words.map((w) => w.length))].sort((a, b) => b - a);
  const set = new Set(words);
  return defineDetector({
    id: spec.id,
    category: spec.category ?? 'pii',
    severity: spec.severity ?? 'medium',
    label: spec.label ?? spec.id.toUpperCase(),
    priority: 65,
    keywords: words,
    reach: longest + 1,
    lookBehind: 1,
    onHit(text, at, emit) {
      if (at > 0 && isWord(text.charCodeAt(at - 1))) return;
      for (const n of lengths) {
        const end = at + n;
        if (end < text.length && isWord(text.charCodeAt(end))) continue;
        if (set.has(text.slice(at, end).toLowerCase())) {
          emit(at, end);
          return;
        }
      }
    },
  });
}
