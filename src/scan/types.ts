import type { Category, Severity } from '../guard/index.js';

/** Where a finding was read from. */
export type SourceKind = 'tree' | 'staged' | 'history' | 'log' | 'stdin';

/** What a live check of a found Mistral key said; see `verifyFindings`. */
export type Verification = 'live' | 'revoked' | 'unknown';

/**
 * One secret found by the scanner. Like a guard finding it never carries the value: only a
 * masked preview and a fingerprint derived from a hash of the value.
 */
export interface ScanFinding {
  /** The guard detector that matched, such as `mistral_api_key`. */
  rule: string;
  category: Category;
  severity: Severity;
  /** Path relative to the repository root (or the working directory outside one), `/`-separated. */
  file: string;
  /** 1-based line and column (UTF-16 code units) of the first character. */
  line: number;
  column: number;
  /** Line and column just past the last character, as SARIF regions count them. */
  endLine: number;
  endColumn: number;
  /** A masked hint such as `sk-proj-***`; never enough to rebuild the value. */
  preview: string;
  /** Stable across runs and line moves; see `fingerprint` in `fingerprint.ts`. */
  fingerprint: string;
  source: SourceKind;
  /** Set when the value was found inside a base64 run. */
  encoding?: 'base64';
  /** History scans: the commit that added the value and its author date (ISO 8601). */
  commit?: string;
  authorDate?: string;
  verification?: Verification;
}

/** Counts of what a scan looked at and what it set aside. */
export interface ScanStats {
  files: number;
  commits: number;
  skippedBinary: number;
  /** Findings dropped by an inline `mistral-guard:allow` comment. */
  allowedInline: number;
  /** Findings dropped by an allow-listed path or value pattern. */
  allowedByRule: number;
  /** Findings accepted by the baseline file. */
  baselined: number;
  /** Files that could not be read; a scan with errors is incomplete. */
  errors: number;
}

/** Creates zeroed stats. */
export function emptyStats(): ScanStats {
  return {
    files: 0,
    commits: 0,
    skippedBinary: 0,
    allowedInline: 0,
    allowedByRule: 0,
    baselined: 0,
    errors: 0,
  };
}
