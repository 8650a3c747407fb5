import { createStreamRedactor, type Finding, type ScanOptions, scanText } from '../guard/index.js';
import type { AllowList } from './allow.js';
import { canonicalSecret, fingerprint, hashSecret } from './fingerprint.js';
import type { ScanFinding, ScanStats, SourceKind } from './types.js';
import { ALLOW_MARKER, TextWindow } from './window.js';

/**
 * Turns texts into scanner findings: runs the guard's rule set, locates each value by line and
 * column, applies inline allow comments and the allow-lists, and fingerprints what is left.
 */

/** What every text of one scan shares. */
export interface ScanSession {
  /** Guard options, one object for the whole scan so the rules compile once. */
  options: ScanOptions;
  allow: AllowList;
  stats: ScanStats;
  /**
   * Called with each reported finding and its raw value, for checks that need the value (the
   * live check of Mistral keys). The value must not be kept longer than that check needs.
   */
  onValue?: (finding: ScanFinding, value: string) => void;
  /** Reports a problem that does not stop the scan (an unreadable file); safe to print. */
  warn: (message: string) => void;
}

/** Where a text comes from, as reported. */
export interface TextOrigin {
  file: string;
  source: SourceKind;
  commit?: string;
  authorDate?: string;
}

/** Which findings of a text count: by their first and last line. */
type LineFilter = (firstLine: number, lastLine: number) => boolean;

// Bytes git inspects to call a file binary; the same rule keeps both tools in agreement.
const BINARY_PROBE = 8000;

/** True when the first 8000 bytes hold a NUL byte, git's own test for binary content. */
export function looksBinary(bytes: Uint8Array): boolean {
  const end = Math.min(bytes.length, BINARY_PROBE);
  for (let i = 0; i < end; i++) if (bytes[i] === 0) return true;
  return false;
}

function locate(
  f: Finding,
  window: TextWindow,
  origin: TextOrigin,
  session: ScanSession,
  lineOffset: number,
  keep: LineFilter | undefined,
): ScanFinding | null {
  const first = window.position(f.start);
  const last = window.position(f.end);
  if (keep && !keep(first.line, last.line)) return null;
  if (window.allows(first.line) || window.allows(last.line)) {
    session.stats.allowedInline++;
    return null;
  }
  const raw = window.slice(f.start, f.end);
  if (session.allow.allowsValue(canonicalSecret(raw))) {
    session.stats.allowedByRule++;
    return null;
  }
  const finding: ScanFinding = {
    rule: f.detector,
    category: f.category,
    severity: f.severity,
    file: origin.file,
    line: first.line + lineOffset,
    column: first.column,
    endLine: last.line + lineOffset,
    endColumn: last.column,
    preview: f.preview,
    fingerprint: fingerprint(f.detector, origin.file, hashSecret(raw)),
    source: origin.source,
  };
  if (f.encoding) finding.encoding = f.encoding;
  if (origin.commit) finding.commit = origin.commit;
  if (origin.authorDate) finding.authorDate = origin.authorDate;
  session.onValue?.(finding, raw);
  return finding;
}

const MARKER_MASK = ' '.repeat(ALLOW_MARKER.length);

/**
 * `text` with each allow comment blanked out (same length, so offsets hold). The comment holds
 * the word "mistral", and a random-looking token next to it, on its line or the next, would
 * otherwise read as a Mistral key: the comment meant to silence a finding would create one.
 */
export function maskMarkers(text: string): string {
  return text.includes(ALLOW_MARKER) ? text.replaceAll(ALLOW_MARKER, MARKER_MASK) : text;
}

/**
 * Scans one whole text. Findings equal `scanText(text, session.options)` minus those allowed
 * (and any that the words of an allow comment would have caused).
 *
 * @example
 * scanWhole(readFileSync('.env', 'utf8'), { file: '.env', source: 'tree' }, session);
 */
export function scanWhole(text: string, origin: TextOrigin, session: ScanSession): ScanFinding[] {
  return scanPart(text, origin, session, 0);
}

/**
 * Scans a part of a file that starts at line `firstLine`, keeping only findings for which `keep`
 * holds (a diff hunk: findings touching an added line).
 */
export function scanPart(
  text: string,
  origin: TextOrigin,
  session: ScanSession,
  firstLine: number,
  keep?: LineFilter,
): ScanFinding[] {
  const found = scanText(maskMarkers(text), session.options);
  if (found.length === 0) return [];
  const window = new TextWindow();
  window.push(text);
  const out: ScanFinding[] = [];
  for (const f of found) {
    const finding = locate(f, window, origin, session, firstLine > 0 ? firstLine - 1 : 0, keep);
    if (finding) out.push(finding);
  }
  return out;
}

/**
 * Scans text that arrives in pieces (a log, stdin, a very large file) in flat memory. The guard's
 * stream redactor makes the findings equal to a scan of the whole text; each value is located
 * once the redactor releases it, at most a few thousand characters behind the newest piece.
 *
 * @example
 * await scanPieces(createReadStream('app.log', 'utf8'), { file: 'app.log', source: 'log' }, s);
 */
export async function scanPieces(
  pieces: AsyncIterable<string>,
  origin: TextOrigin,
  session: ScanSession,
): Promise<ScanFinding[]> {
  const redactor = createStreamRedactor(session.options);
  // A value is released whole within maxHoldBack characters of the newest piece; four times
  // that, plus the piece itself, is kept so that any value still to come can be located.
  const keepBehind = 4 * redactor.maxHoldBack;
  const window = new TextWindow();
  const out: ScanFinding[] = [];
  let seen = 0;
  const drain = (): void => {
    const all = redactor.findings;
    for (; seen < all.length; seen++) {
      const finding = locate(all[seen]!, window, origin, session, 0, undefined);
      if (finding) out.push(finding);
    }
  };
  // The redactor runs a marker's length behind the window, so a marker split between two
  // pieces is whole, and masked, before the guard reads it.
  let carry = '';
  for await (const piece of pieces) {
    const text = carry + (typeof piece === 'string' ? piece : String(piece));
    const ready = Math.max(0, text.length - (ALLOW_MARKER.length - 1));
    const before = window.length;
    window.push(text.slice(carry.length));
    redactor.push(maskMarkers(text).slice(0, ready));
    carry = text.slice(ready);
    drain();
    window.forget(before - keepBehind);
  }
  redactor.push(carry);
  redactor.end();
  drain();
  return out;
}
