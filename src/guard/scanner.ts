import { scanWith } from './engine.js';
import { failClosed } from './errors.js';
import { compileRules, type Rules } from './rules.js';
import type { Finding, ScanOptions } from './types.js';

/** A compiled rule set with the calls that use it. */
export interface Scanner {
  /** Every sensitive value in `text`, in order, non-overlapping. */
  scan(text: string): Finding[];
  /** `text` with each value replaced by `[REDACTED:<LABEL>]`, and the findings. */
  redact(text: string): RedactResult;
  /** Most characters a stream redactor built on these rules may hold back. */
  readonly maxHoldBack: number;
  /** @internal the compiled rules, for the stream redactor. */
  readonly rules: Rules;
}

/** Result of a redaction: the safe text and what was replaced (offsets into the input). */
export interface RedactResult {
  text: string;
  findings: Finding[];
}

/** The placeholder written in place of a value, e.g. `[REDACTED:EMAIL]`. */
export function placeholder(finding: Pick<Finding, 'label'>): string {
  return `[REDACTED:${finding.label}]`;
}

/** Replaces each finding's span in `text` by its placeholder. Findings must not overlap. */
export function applyRedactions(text: string, findings: Finding[]): string {
  let out = '';
  let at = 0;
  for (const f of findings) {
    out += text.slice(at, f.start) + placeholder(f);
    at = f.end;
  }
  return out + text.slice(at);
}

/**
 * Compiles rules once and returns a scanner. Throws a TypeError at setup for unknown detector
 * ids or unsafe custom patterns; scanning itself throws only a GuardError `inspection_failed`.
 *
 * @example
 * const scanner = createScanner({ enable: ['ip_address'], disable: ['phone_number'] });
 * scanner.redact('mail jo@example.com').text; // 'mail [REDACTED:EMAIL]'
 */
export function createScanner(options: ScanOptions = {}): Scanner {
  const rules = compileRules(options);
  const scan = (text: string): Finding[] =>
    failClosed(() => {
      if (typeof text !== 'string') throw new TypeError('scanned content must be a string');
      return scanWith(rules, text, { final: true, leftCut: false }).findings;
    });
  return {
    scan,
    redact(text) {
      const findings = scan(text);
      return { text: failClosed(() => applyRedactions(text, findings)), findings };
    },
    maxHoldBack: rules.maxHoldBack,
    rules,
  };
}

const defaultScanner = createScanner();
// Rules are compiled once per options object, so a caller passing the same object on every
// request pays the compile cost (and the custom-pattern safety probe) once.
const cache = new WeakMap<ScanOptions, Scanner>();

/** The scanner for `options`, compiled on first use and cached by object identity. */
export function scannerFor(options?: ScanOptions): Scanner {
  if (options === undefined) return defaultScanner;
  let scanner = cache.get(options);
  if (!scanner) {
    scanner = createScanner(options);
    cache.set(options, scanner);
  }
  return scanner;
}

/**
 * Finds secrets and personal data in `text`. Offsets point into `text` as given, even when the
 * value was found through normalising or decoding.
 *
 * @example
 * scanText('key: sk-proj-…')[0]; // { detector: 'openai_api_key', preview: 'sk-proj-***', … }
 */
export function scanText(text: string, options?: ScanOptions): Finding[] {
  return scannerFor(options).scan(text);
}

/**
 * Replaces every finding with a typed placeholder.
 *
 * @example
 * redactText('card 4111 1111 1111 1111').text; // 'card [REDACTED:CARD]'
 */
export function redactText(text: string, options?: ScanOptions): RedactResult {
  return scannerFor(options).redact(text);
}
