import { readFile, writeFile } from 'node:fs/promises';
import { ScanError } from './errors.js';
import type { ScanFinding } from './types.js';

/**
 * The baseline: findings a team has looked at and accepted, so a scan reports only new ones.
 * It is a JSON file meant to be committed and reviewed, so it holds what a reviewer needs (rule
 * and file) and the fingerprint that matches, never a value or a line number: entries stay put
 * when code moves, and the file changes only when the accepted set does.
 *
 *   { "version": 1, "findings": [{ "fingerprint": "…", "rule": "…", "file": "…" }] }
 */

const FINGERPRINT = /^[0-9a-f]{32}$/;
const VERSION = 1;

interface Entry {
  fingerprint: string;
  rule: string;
  file: string;
}

/**
 * Reads the accepted fingerprints. A missing file reads as empty only when `missingOk` (the
 * baseline is about to be written); otherwise it, or a malformed file, is a usage error.
 *
 * @example
 * const accepted = await readBaseline('.mistral-guard-baseline.json');
 */
export async function readBaseline(path: string, missingOk = false): Promise<Set<string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && missingOk) return new Set();
    throw new ScanError(`cannot read the baseline file ${path}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new ScanError(`the baseline file ${path} is not valid JSON`);
  }
  const findings = (data as { findings?: unknown })?.findings;
  if ((data as { version?: unknown })?.version !== VERSION || !Array.isArray(findings)) {
    throw new ScanError(`the baseline file ${path} is not a version ${VERSION} baseline`);
  }
  const accepted = new Set<string>();
  for (const entry of findings) {
    const fp = (entry as Partial<Entry>)?.fingerprint;
    if (typeof fp !== 'string' || !FINGERPRINT.test(fp)) {
      throw new ScanError(`the baseline file ${path} has an entry without a valid fingerprint`);
    }
    accepted.add(fp);
  }
  return accepted;
}

/**
 * Writes `findings` as the new baseline, one entry per fingerprint, sorted so that the file
 * diffs cleanly in review.
 *
 * @example
 * await writeBaseline('.mistral-guard-baseline.json', findings);
 */
export async function writeBaseline(path: string, findings: ScanFinding[]): Promise<number> {
  const entries = new Map<string, Entry>();
  for (const f of findings) {
    entries.set(f.fingerprint, { fingerprint: f.fingerprint, rule: f.rule, file: f.file });
  }
  const sorted = [...entries.values()].sort(
    (a, b) =>
      a.file.localeCompare(b.file) ||
      a.rule.localeCompare(b.rule) ||
      a.fingerprint.localeCompare(b.fingerprint),
  );
  await writeFile(path, `${JSON.stringify({ version: VERSION, findings: sorted }, null, 2)}\n`);
  return sorted.length;
}
