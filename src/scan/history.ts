import { type ScanSession, scanPart } from './content.js';
import { ScanError } from './errors.js';
import { GitError, gitRecords, gitText, repoRoot } from './git.js';
import type { ScanFinding } from './types.js';

/**
 * The history of a repository, read as one streamed `git log -p`, oldest commit first.
 *
 * Each commit is read as its diff, so a value is found in the commit that added it, whether it
 * was removed later or its file deleted. Each hunk is scanned with its context lines (a key on
 * an added line is only recognised next to "mistral" on the line above) and a finding counts
 * when it touches an added line.
 *
 * Merge commits are read as dense combined diffs (`--cc`), which keep only lines that match
 * neither parent: a value brought in by a merged branch was already found in the branch's own
 * commit, and a value typed while resolving a conflict, or slipped into a merge, shows up here.
 * The alternatives lose or repeat: `--first-parent` never visits a branch's own commits, so a
 * value added and removed there is missed; `-m` diffs a merge against every parent and re-reads
 * a whole side of history at each merge.
 *
 * A value is reported once, at the first commit that added it at that path (commits are read
 * parents first), however many later commits touch it again.
 */

/** Options of a history scan. */
export interface HistoryScanOptions {
  cwd: string;
  /** Only commits not reachable from this revision. */
  since?: string;
  /** Every ref (branches, tags, remotes, the stash) instead of HEAD only. */
  all?: boolean;
  /** Diff binary files as text instead of skipping them. */
  includeBinary?: boolean;
  /** Called after each commit with the count so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

interface Hunk {
  firstLine: number;
  lines: string[];
  added: boolean[];
  anyAdded: boolean;
}

const HUNK_HEADER = /^(@{2,}) (?:-\d+(?:,\d+)? )+\+(\d+)(?:,\d+)? @{2,}/;
const C_ESCAPES: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13 };

/** Undoes git's C-style quoting of an unusual path (`"dir/\303\251t\303\251 \"x\""`). */
export function unquotePath(quoted: string): string {
  if (!quoted.startsWith('"')) return quoted;
  const bytes: number[] = [];
  for (let i = 1; i < quoted.length - 1; i++) {
    const c = quoted[i]!;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const next = quoted[++i]!;
    if (/[0-7]/.test(next)) {
      bytes.push(Number.parseInt(quoted.slice(i, i + 3), 8));
      i += 2;
    } else bytes.push(C_ESCAPES[next] ?? next.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}

// `+++ b/path`, with a tab after paths that hold a space; null for a deleted file.
function newPath(line: string): string | null {
  const raw = unquotePath(line.slice(4).replace(/\t$/, ''));
  if (raw === '/dev/null') return null;
  return raw.startsWith('b/') ? raw.slice(2) : raw;
}

function logArgs(options: HistoryScanOptions, revisions: string[]): string[] {
  const args = [
    'log',
    '-p',
    '--cc',
    '--topo-order',
    '--reverse',
    '--no-color',
    '--no-ext-diff',
    '--no-textconv',
    '--no-renames',
    '-U3',
    '--src-prefix=a/',
    '--dst-prefix=b/',
    '--format=%x00commit %H %aI',
  ];
  if (options.includeBinary) args.push('--text');
  return [...args, ...revisions, '--'];
}

async function revisionsOf(options: HistoryScanOptions, root: string): Promise<string[] | null> {
  if (options.since?.startsWith('-')) throw new ScanError('--since must be a revision');
  const revisions = options.all ? ['--all'] : ['HEAD'];
  if (!options.all) {
    // Before the first commit there is no history to read.
    const head = await gitText(['rev-parse', '--verify', '-q', 'HEAD'], { cwd: root }).catch(
      (error: unknown) => {
        if (error instanceof GitError) return '';
        throw error;
      },
    );
    if (head.trim() === '') return null;
  }
  if (options.since) revisions.push(`^${options.since}`);
  return revisions;
}

/** Reads a `git log -p --cc` stream and scans its hunks; see the module comment. */
class LogReader {
  #commit = '';
  #date = '';
  #file: string | null = null;
  #parents = 1;
  #inHeader = false;
  #hunk: Hunk | null = null;
  #seen = new Set<string>();
  readonly findings: ScanFinding[] = [];

  constructor(
    private readonly session: ScanSession,
    private readonly onCommit: () => void,
  ) {}

  line(line: string): void {
    if (line.charCodeAt(0) === 0) {
      this.#flush();
      const [, commit, date] = line.split(' ');
      this.#commit = commit ?? '';
      this.#date = date ?? '';
      this.#file = null;
      this.onCommit();
    } else if (line.startsWith('diff ')) {
      this.#flush();
      this.#file = null;
      this.#inHeader = true;
    } else if (line.startsWith('@@')) this.#startHunk(line);
    else if (this.#inHeader) {
      if (line.startsWith('+++ ')) this.#file = this.#allowed(newPath(line));
    } else if (this.#hunk) this.#hunkLine(line);
  }

  end(): void {
    this.#flush();
  }

  #allowed(file: string | null): string | null {
    return file !== null && !this.session.allow.allowsPath(file) ? file : null;
  }

  #startHunk(line: string): void {
    this.#flush();
    this.#inHeader = false;
    const m = HUNK_HEADER.exec(line);
    if (!m || this.#file === null) return;
    this.#parents = m[1]!.length - 1;
    this.#hunk = { firstLine: Number(m[2]), lines: [], added: [], anyAdded: false };
  }

  #hunkLine(line: string): void {
    const hunk = this.#hunk!;
    const prefix = line.slice(0, this.#parents);
    // A `-` in any column: the line is gone from the result. `\` marks a missing final newline.
    if (prefix.includes('-') || line.startsWith('\\')) return;
    // Added means added against every parent: a line kept from one side of a merge is old.
    const added = prefix.length > 0 && !prefix.includes(' ');
    hunk.lines.push(line.slice(this.#parents));
    hunk.added.push(added);
    if (added) hunk.anyAdded = true;
  }

  #flush(): void {
    const hunk = this.#hunk;
    this.#hunk = null;
    if (!hunk?.anyAdded || this.#file === null) return;
    const origin = {
      file: this.#file,
      source: 'history' as const,
      commit: this.#commit,
      authorDate: this.#date,
    };
    const touchesAdded = (first: number, last: number): boolean => {
      for (let i = first - 1; i < last; i++) if (hunk.added[i]) return true;
      return false;
    };
    const text = hunk.lines.join('\n');
    for (const f of scanPart(text, origin, this.session, hunk.firstLine, touchesAdded)) {
      if (this.#seen.has(f.fingerprint)) continue;
      this.#seen.add(f.fingerprint);
      this.findings.push(f);
    }
  }
}

/**
 * Scans the history of the repository holding `options.cwd`; see the module comment.
 *
 * @example
 * const findings = await scanHistory({ cwd: '.', all: true }, session);
 */
export async function scanHistory(
  options: HistoryScanOptions,
  session: ScanSession,
): Promise<ScanFinding[]> {
  const root = await repoRoot(options.cwd);
  if (!root) throw new ScanError('--history needs a git repository');
  const revisions = await revisionsOf(options, root);
  if (revisions === null) return [];
  let total = 0;
  if (options.onProgress) {
    const count = await gitText(['rev-list', '--count', ...revisions, '--'], { cwd: root });
    total = Number(count.trim());
  }
  const reader = new LogReader(session, () => {
    session.stats.commits++;
    options.onProgress?.(session.stats.commits, total);
  });
  for await (const line of gitRecords(logArgs(options, revisions), { cwd: root }, 10)) {
    reader.line(line.toString('utf8'));
  }
  reader.end();
  return reader.findings;
}
