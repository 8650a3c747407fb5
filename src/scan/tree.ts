import { createReadStream } from 'node:fs';
import { lstat, open, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { looksBinary, type ScanSession, scanPieces, scanWhole } from './content.js';
import { ScanError } from './errors.js';
import { gitRecords, repoRoot } from './git.js';
import { forEachLimit } from './pool.js';
import type { ScanFinding } from './types.js';

/** Options of a working-tree scan. */
export interface TreeScanOptions {
  /** Files and directories to scan, relative to `cwd`. */
  paths: string[];
  cwd: string;
  /** Also scan files that `.gitignore` and git's other exclude files leave out. */
  noIgnore?: boolean;
  /** Scan files that look binary instead of skipping them. */
  includeBinary?: boolean;
}

/** A file to scan and the path it is reported under. */
export interface FileTarget {
  abs: string;
  /** The reported path: from the repository root, or from `cwd` outside a repository. */
  file: string;
}

// Files above this size are scanned as a stream of pieces, so memory stays flat however large.
const STREAM_ABOVE = 16 * 1024 * 1024;
const PIECE = 1024 * 1024;
// Reading files overlaps with scanning; more reads in flight than this gain nothing measurable.
const READ_CONCURRENCY = 8;

function posix(path: string): string {
  return sep === '/' ? path : path.split(sep).join('/');
}

async function listRepo(dir: string, root: string, noIgnore: boolean): Promise<FileTarget[]> {
  const args = ['ls-files', '-z', '--cached', '--others', '--full-name'];
  if (!noIgnore) args.push('--exclude-standard');
  const targets: FileTarget[] = [];
  for await (const name of gitRecords(args, { cwd: dir }, 0)) {
    const file = name.toString('utf8');
    targets.push({ abs: join(root, file), file });
  }
  return targets;
}

async function walk(dir: string, cwd: string, out: FileTarget[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const abs = join(dir, entry.name);
    // Symbolic links are not followed: a link may lead out of the tree or into a loop.
    if (entry.isDirectory() && entry.name !== '.git') await walk(abs, cwd, out);
    else if (entry.isFile()) out.push({ abs, file: posix(relative(cwd, abs)) });
  }
}

async function targetsOf(options: TreeScanOptions): Promise<FileTarget[]> {
  const seen = new Map<string, FileTarget>();
  for (const path of options.paths) {
    const abs = resolve(options.cwd, path);
    const info = await stat(abs).catch(() => null);
    if (!info) throw new ScanError(`no such file or directory: ${path}`);
    const dir = info.isDirectory() ? abs : dirname(abs);
    const root = await repoRoot(dir);
    let found: FileTarget[] = [];
    if (!info.isDirectory()) found = [{ abs, file: posix(relative(root ?? options.cwd, abs)) }];
    else if (root) found = await listRepo(abs, root, options.noIgnore === true);
    else await walk(abs, options.cwd, found);
    for (const t of found) seen.set(t.abs, t);
  }
  return [...seen.values()];
}

async function* pieces(path: string): AsyncGenerator<string> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: PIECE });
  for await (const piece of stream) yield piece as string;
}

async function scanLarge(target: FileTarget, session: ScanSession, binary: boolean) {
  const handle = await open(target.abs, 'r');
  const probe = Buffer.alloc(8000);
  try {
    await handle.read(probe, 0, probe.length, 0);
  } finally {
    await handle.close();
  }
  if (looksBinary(probe) && !binary) return null;
  return scanPieces(pieces(target.abs), { file: target.file, source: 'tree' }, session);
}

/**
 * Scans one file from disk. Returns null when it was skipped (not a regular file, or binary and
 * binary files were not asked for).
 */
export async function scanFile(
  target: FileTarget,
  session: ScanSession,
  includeBinary: boolean,
): Promise<ScanFinding[] | null> {
  const info = await lstat(target.abs);
  if (!info.isFile()) return [];
  if (info.size > STREAM_ABOVE) return scanLarge(target, session, includeBinary);
  const bytes = await readFile(target.abs);
  const binary = looksBinary(bytes);
  if (binary && !includeBinary) return null;
  // Binary content is read one byte per character, so a column is a byte offset in its line.
  const text = bytes.toString(binary ? 'latin1' : 'utf8');
  return scanWhole(text, { file: target.file, source: 'tree' }, session);
}

/**
 * Scans the working tree under `options.paths`. Inside a git repository the file list comes from
 * git (tracked files and untracked ones not ignored); outside one every file is walked. A path
 * named on the command line is scanned even when ignored.
 *
 * @example
 * const findings = await scanTree({ paths: ['.'], cwd: process.cwd() }, session);
 */
export async function scanTree(
  options: TreeScanOptions,
  session: ScanSession,
): Promise<ScanFinding[]> {
  const targets = (await targetsOf(options)).filter((t) => !session.allow.allowsPath(t.file));
  const findings: ScanFinding[] = [];
  await forEachLimit(targets, READ_CONCURRENCY, async (target) => {
    try {
      const found = await scanFile(target, session, options.includeBinary === true);
      if (found === null) session.stats.skippedBinary++;
      else findings.push(...found);
      session.stats.files++;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A tracked file deleted from the work tree has nothing left to leak.
      if (code === 'ENOENT') return;
      // I/O errors and a failed inspection carry a code; anything else is a bug to surface.
      if (typeof code !== 'string') throw error;
      session.stats.errors++;
      session.warn(`cannot scan ${target.file} (${code})`);
    }
  });
  return findings;
}
