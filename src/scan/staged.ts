import { looksBinary, type ScanSession, scanWhole } from './content.js';
import { ScanError } from './errors.js';
import { catBlobs, gitRecords, repoRoot } from './git.js';
import type { ScanFinding } from './types.js';

// Index entries that are not file content: symbolic links and submodules.
const SYMLINK_MODE = '120000';
const GITLINK_MODE = '160000';

/** Options of a staged scan. */
export interface StagedScanOptions {
  cwd: string;
  includeBinary?: boolean;
}

async function stagedPaths(root: string): Promise<Set<string>> {
  // Against HEAD, or the empty tree before the first commit; deleted files leak nothing new.
  const args = ['diff', '--cached', '--name-only', '-z', '--no-renames', '--diff-filter=d'];
  const paths = new Set<string>();
  for await (const name of gitRecords(args, { cwd: root }, 0)) paths.add(name.toString('utf8'));
  return paths;
}

async function stagedBlobs(root: string, paths: Set<string>): Promise<Map<string, string[]>> {
  // blob id -> paths; `ls-files -s` lists the index as `mode id stage<TAB>path`.
  const blobs = new Map<string, string[]>();
  for await (const entry of gitRecords(['ls-files', '--stage', '-z'], { cwd: root }, 0)) {
    const line = entry.toString('utf8');
    const tab = line.indexOf('\t');
    const [mode, id] = line.slice(0, tab).split(' ');
    const path = line.slice(tab + 1);
    if (!paths.has(path) || mode === SYMLINK_MODE || mode === GITLINK_MODE || !id) continue;
    const list = blobs.get(id);
    if (list) list.push(path);
    else blobs.set(id, [path]);
  }
  return blobs;
}

/**
 * Scans every staged file as it sits in the index (what the next commit will hold), whole, not
 * only the changed lines: a value staged in an earlier `git add` of the same file counts too.
 * Content comes from git's object store, so edits made after `git add` cannot hide a value.
 *
 * @example
 * const findings = await scanStaged({ cwd: process.cwd() }, session);
 */
export async function scanStaged(
  options: StagedScanOptions,
  session: ScanSession,
): Promise<ScanFinding[]> {
  const root = await repoRoot(options.cwd);
  if (!root) throw new ScanError('--staged needs a git repository');
  const paths = [...(await stagedPaths(root))].filter((p) => !session.allow.allowsPath(p));
  const blobs = await stagedBlobs(root, new Set(paths));
  const findings: ScanFinding[] = [];
  for await (const { id, content } of catBlobs([...blobs.keys()], root)) {
    const files = blobs.get(id) ?? [];
    const binary = looksBinary(content);
    session.stats.files += files.length;
    if (binary && options.includeBinary !== true) {
      session.stats.skippedBinary += files.length;
      continue;
    }
    const text = content.toString(binary ? 'latin1' : 'utf8');
    for (const file of files)
      findings.push(...scanWhole(text, { file, source: 'staged' }, session));
  }
  return findings;
}
