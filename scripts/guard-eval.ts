// Precision and recall of the content guard per detector, over the labelled corpus in
// test/fixtures/guard-corpus.jsonl. Run: node --import tsx scripts/guard-eval.ts
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ScanOptions } from '../src/guard/index.js';
import { scanText } from '../src/guard/index.js';

/** One labelled case of the corpus. */
export interface CorpusCase {
  id: string;
  detector: string;
  kind: 'positive' | 'negative';
  text: string;
  expect: { detector: string; start: number; end: number }[];
  tags: string[];
  enable?: string[];
}

/** Counts for one detector. */
export interface Score {
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
}

/** Scores per detector and overall, and the ids of cases with a miss or a false alarm. */
export interface Evaluation {
  byDetector: Record<string, Score>;
  overall: Score;
  misses: string[];
  falseAlarms: string[];
}

/** Reads the corpus file. */
export function loadCorpus(): CorpusCase[] {
  const path = fileURLToPath(new URL('../test/fixtures/guard-corpus.jsonl', import.meta.url));
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as CorpusCase);
}

function score(tp: number, fp: number, fn: number): Score {
  return {
    tp,
    fp,
    fn,
    precision: tp + fp === 0 ? 1 : tp / (tp + fp),
    recall: tp + fn === 0 ? 1 : tp / (tp + fn),
  };
}

const optionsCache = new Map<string, ScanOptions>();

/** The scan options of a case, one object per distinct set so compiled rules are reused. */
export function optionsOf(c: CorpusCase): ScanOptions | undefined {
  if (!c.enable) return undefined;
  const key = c.enable.join(',');
  let options = optionsCache.get(key);
  if (!options) {
    options = { enable: c.enable };
    optionsCache.set(key, options);
  }
  return options;
}

/**
 * Scans every case. A finding counts as a true positive when it has the expected detector and
 * overlaps the expected span; any other finding is a false positive of its detector.
 */
export function evaluate(cases: CorpusCase[]): Evaluation {
  const counts = new Map<string, { tp: number; fp: number; fn: number }>();
  const at = (d: string) => {
    const known = counts.get(d);
    if (known) return known;
    const fresh = { tp: 0, fp: 0, fn: 0 };
    counts.set(d, fresh);
    return fresh;
  };
  const misses: string[] = [];
  const falseAlarms: string[] = [];
  for (const c of cases) {
    const findings = scanText(c.text, optionsOf(c));
    const used = new Set<number>();
    for (const e of c.expect) {
      const hit = findings.findIndex(
        (f, i) => !used.has(i) && f.detector === e.detector && f.start < e.end && e.start < f.end,
      );
      if (hit >= 0) {
        used.add(hit);
        at(e.detector).tp++;
      } else {
        at(e.detector).fn++;
        misses.push(c.id);
      }
    }
    findings.forEach((f, i) => {
      if (used.has(i)) return;
      at(f.detector).fp++;
      falseAlarms.push(c.id);
    });
  }
  const byDetector: Record<string, Score> = {};
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const [d, c] of [...counts].sort()) {
    byDetector[d] = score(c.tp, c.fp, c.fn);
    tp += c.tp;
    fp += c.fp;
    fn += c.fn;
  }
  return { byDetector, overall: score(tp, fp, fn), misses, falseAlarms };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`.padStart(7);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const cases = loadCorpus();
  const result = evaluate(cases);
  const positives = cases.filter((c) => c.kind === 'positive').length;
  process.stdout.write(
    `${cases.length} cases (${positives} positive, ${cases.length - positives} negative)\n`,
  );
  process.stdout.write(
    `${'detector'.padEnd(24)} ${'tp'.padStart(4)} ${'fp'.padStart(4)} ${'fn'.padStart(4)} precision  recall\n`,
  );
  const rows = { ...result.byDetector, overall: result.overall };
  for (const [d, s] of Object.entries(rows)) {
    process.stdout.write(
      `${d.padEnd(24)} ${String(s.tp).padStart(4)} ${String(s.fp).padStart(4)} ${String(s.fn).padStart(4)}   ${pct(s.precision)} ${pct(s.recall)}\n`,
    );
  }
  if (result.misses.length > 0) process.stdout.write(`missed: ${result.misses.join(' ')}\n`);
  if (result.falseAlarms.length > 0)
    process.stdout.write(`false alarms: ${result.falseAlarms.join(' ')}\n`);
}
