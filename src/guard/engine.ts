import type { Detector } from './detector.js';
import { buildView, originalEnd, originalStart } from './normalize.js';
import { prefilter, type Signals } from './prefilter.js';
import type { Rules } from './rules.js';
import type { Finding } from './types.js';

/**
 * The scanning core: view, pre-filter pass, detectors where the pass saw something, base64
 * runs decoded and scanned once more, overlaps settled, offsets mapped back to the original.
 */

interface Candidate {
  detector: Detector;
  start: number;
  end: number;
  preview: string;
  encoding?: 'base64';
}

// Number detectors look up to an IBAN's length before a digit cluster and a little after it.
const NUMERIC_BEFORE = 42;
const NUMERIC_AFTER = 8;
// A decoded run must be text: at least this share of printable ASCII bytes.
const PRINTABLE_SHARE = 0.95;

/** How a scan is framed: a whole text, or a stream buffer cut on one or both sides. */
export interface ScanMode {
  /** The text ends here for good; false while a stream may still append to it. */
  final: boolean;
  /** Text was released before offset 0, so offset 0 is not a real start. */
  leftCut: boolean;
}

/** Findings, and for a non-final scan the original offset before which they are settled. */
export interface ScanOutcome {
  findings: Finding[];
  stable: number;
}

// Merges [start, end) windows given as sorted-by-start pairs into a fresh array.
function mergeWindows(windows: number[], limit: number): number[] {
  const merged: number[] = [];
  for (let i = 0; i < windows.length; i += 2) {
    const s = Math.max(0, windows[i]!);
    const e = Math.min(limit, windows[i + 1]!);
    const last = merged.length - 1;
    if (last > 0 && s <= merged[last]!) merged[last] = Math.max(merged[last]!, e);
    else merged.push(s, e);
  }
  return merged;
}

function runKeywordDetectors(rules: Rules, text: string, sig: Signals, out: Candidate[]): void {
  const windowHits = new Map<number, number[]>();
  for (let h = 0; h < sig.hitAt.length; h++) {
    const at = sig.hitAt[h]!;
    for (const di of rules.keywordDetectors[sig.hitKeyword[h]!]!) {
      const d = rules.detectors[di]!;
      if (d.onHit) d.onHit(text, at, emitter(d, text, out));
      else {
        const hits = windowHits.get(di);
        if (hits) hits.push(at);
        else windowHits.set(di, [at]);
      }
    }
  }
  for (const [di, hits] of windowHits) {
    const d = rules.detectors[di]!;
    hits.sort((a, b) => a - b);
    const windows: number[] = [];
    for (const h of hits) windows.push(h - d.lead, h + d.reach);
    const merged = mergeWindows(windows, text.length);
    const emit = emitter(d, text, out);
    for (let w = 0; w < merged.length; w += 2)
      d.inWindow!(text, merged[w]!, merged[w + 1]!, hits, emit);
  }
}

function runNumericDetectors(rules: Rules, text: string, sig: Signals, out: Candidate[]): void {
  if (sig.clusters.length === 0) return;
  for (const d of rules.numeric) {
    // A card needs 13 digits, an SSN 9: clusters below a detector's own minimum are skipped.
    const windows: number[] = [];
    for (let c = 0; c < sig.clusters.length; c += 3) {
      if (sig.clusters[c + 2]! < d.minDigits!) continue;
      windows.push(sig.clusters[c]! - NUMERIC_BEFORE, sig.clusters[c + 1]! + NUMERIC_AFTER);
    }
    if (windows.length === 0) continue;
    const merged = mergeWindows(windows, text.length);
    const emit = emitter(d, text, out);
    for (let w = 0; w < merged.length; w += 2)
      d.inWindow!(text, merged[w]!, merged[w + 1]!, [], emit);
  }
}

function emitter(d: Detector, text: string, out: Candidate[]) {
  return (start: number, end: number): void => {
    out.push({ detector: d, start, end, preview: d.preview(text.slice(start, end)) });
  };
}

function decodeRun(text: string, start: number, end: number): string | null {
  const bytes = Buffer.from(text.slice(start, end), 'base64');
  if (bytes.length < 12) return null;
  let printable = 0;
  for (const b of bytes) if ((b >= 32 && b < 127) || b === 9 || b === 10 || b === 13) printable++;
  return printable >= bytes.length * PRINTABLE_SHARE ? bytes.toString('latin1') : null;
}

function runBase64(
  rules: Rules,
  text: string,
  sig: Signals,
  leftCut: boolean,
  out: Candidate[],
): void {
  for (let r = 0; r < sig.base64.length; r += 2) {
    const start = sig.base64[r]!;
    const end = sig.base64[r + 1]!;
    // A run cut by the stream's left edge would decode out of phase.
    if (start === 0 && leftCut) continue;
    const decoded = decodeRun(text, start, end);
    if (decoded === null) continue;
    const inner: Candidate[] = [];
    collect(rules, decoded, false, false, inner);
    for (const c of inner) {
      // Each 4 base64 characters carry 3 bytes: map the byte span to the characters holding it.
      const s = start + Math.floor(c.start / 3) * 4;
      const e = Math.min(end, start + Math.ceil(c.end / 3) * 4);
      out.push({ ...c, start: s, end: e, encoding: 'base64' });
    }
  }
}

function collect(
  rules: Rules,
  text: string,
  base64: boolean,
  leftCut: boolean,
  out: Candidate[],
): Signals {
  const minDigits = rules.numeric.length > 0 ? rules.minDigits : Infinity;
  const sig = prefilter(text, rules.automaton, minDigits, base64);
  runKeywordDetectors(rules, text, sig, out);
  runNumericDetectors(rules, text, sig, out);
  for (const d of rules.scanAll) d.scanAll!(text, emitter(d, text, out));
  if (base64) runBase64(rules, text, sig, leftCut, out);
  return sig;
}

function better(a: Candidate, b: Candidate): boolean {
  if (a.detector.priority !== b.detector.priority) return a.detector.priority > b.detector.priority;
  return a.end - a.start > b.end - b.start;
}

// Keeps non-overlapping candidates: the higher priority wins an overlap, then the longer one.
function resolve(candidates: Candidate[]): Candidate[] {
  candidates.sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: Candidate[] = [];
  for (const c of candidates) {
    let last = kept[kept.length - 1];
    if (last === undefined || c.start >= last.end) {
      kept.push(c);
      continue;
    }
    if (!better(c, last)) continue;
    while (last !== undefined && last.end > c.start && better(c, last)) {
      kept.pop();
      last = kept[kept.length - 1];
    }
    if (last === undefined || last.end <= c.start) kept.push(c);
  }
  return kept;
}

function stablePoint(rules: Rules, length: number, sig: Signals, kept: Candidate[]): number {
  let stable = length - rules.baseHoldBack;
  for (let h = 0; h < sig.hitAt.length; h++) {
    const at = sig.hitAt[h]!;
    for (const di of rules.keywordDetectors[sig.hitKeyword[h]!]!) {
      const d = rules.detectors[di]!;
      if (at + d.reach > length) stable = Math.min(stable, at - d.lead);
    }
  }
  if (sig.openRunStart >= 0) stable = Math.min(stable, sig.openRunStart);
  stable = Math.max(0, stable);
  for (const c of kept) if (c.start < stable && c.end > stable) stable = c.start;
  return stable;
}

/**
 * Characters scanned by `scanWith` in this process. Tests read it to check that the stream
 * redactor's work grows linearly with its input; keeping it costs one addition per scan.
 */
export const scanWork = { characters: 0 };

/** Scans `text` with compiled rules. Offsets in the outcome are offsets into `text`. */
export function scanWith(rules: Rules, text: string, mode: ScanMode): ScanOutcome {
  scanWork.characters += text.length;
  const view = buildView(text);
  const candidates: Candidate[] = [];
  const sig = collect(rules, view.text, true, mode.leftCut, candidates);
  const kept = resolve(candidates);
  const findings: Finding[] = kept.map((c) => {
    const f: Finding = {
      detector: c.detector.id,
      category: c.detector.category,
      severity: c.detector.severity,
      start: originalStart(view, c.start),
      end: originalEnd(view, c.end),
      preview: c.preview,
      label: c.detector.label,
    };
    if (c.encoding) f.encoding = c.encoding;
    return f;
  });
  const stable = mode.final
    ? text.length
    : originalStart(view, stablePoint(rules, view.text.length, sig, kept));
  return { findings, stable };
}
