import { spawn } from 'node:child_process';
import { ScanError } from './errors.js';

/**
 * Running git as a child process, streaming. A repository being scanned may be untrusted, and
 * some of its settings run programs (`core.fsmonitor`, external diff drivers, text
 * conversions), so every call turns them off; no pager or prompt can start without a terminal.
 */

const SAFE_CONFIG = ['-c', 'core.fsmonitor=false', '-c', 'core.quotePath=false'];
// Git's own error text can be long; the first line says what went wrong.
const STDERR_KEEP = 2000;

function gitEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0', LC_ALL: 'C' };
}

/** A failed git command; the message is git's first line of complaint, safe to print. */
export class GitError extends ScanError {
  constructor(
    readonly args: string[],
    readonly exitCode: number | null,
    stderr: string,
  ) {
    const first = stderr.split('\n').find((l) => l.trim() !== '') ?? `exit code ${exitCode}`;
    super(
      `git ${args[0]} failed: ${first.replace(/^(fatal|error): /, '').slice(0, 300)}`,
      'git_failed',
    );
    this.name = 'GitError';
  }
}

/** Options of a git call. */
export interface GitCall {
  cwd: string;
  /** Written to git's stdin, then closed. */
  input?: string | Buffer;
  /** Exit codes that are answers, not failures (`check-ignore` exits 1 when nothing matched). */
  okExitCodes?: number[];
}

/**
 * Runs git and yields its stdout split on `separator` (a byte: 0 for `-z` output, 10 for lines),
 * as Buffers without the separator. Throws GitError after the last record when git fails.
 *
 * @example
 * for await (const path of gitRecords(['ls-files', '-z'], { cwd }, 0)) paths.push(path.toString());
 */
export async function* gitRecords(
  args: string[],
  call: GitCall,
  separator: number,
): AsyncGenerator<Buffer> {
  const child = spawn('git', [...SAFE_CONFIG, ...args], {
    cwd: call.cwd,
    env: gitEnv(),
    stdio: [call.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    if (stderr.length < STDERR_KEEP) stderr += d;
  });
  const closed = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  if (call.input !== undefined) child.stdin!.end(call.input);
  let carry: Buffer[] = [];
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      let from = 0;
      for (let at = chunk.indexOf(separator); at >= 0; at = chunk.indexOf(separator, from)) {
        const part = chunk.subarray(from, at);
        yield carry.length > 0 ? Buffer.concat([...carry, part]) : part;
        carry = [];
        from = at + 1;
      }
      if (from < chunk.length) carry.push(chunk.subarray(from));
    }
    if (carry.length > 0) yield Buffer.concat(carry);
  } finally {
    // A consumer that stops early must not leave git running.
    if (child.exitCode === null) child.kill();
  }
  const code = await closed;
  if (code !== 0 && !(code !== null && call.okExitCodes?.includes(code))) {
    throw new GitError(args, code, stderr);
  }
}

/** Runs git and returns its whole stdout as text (for short answers only). */
export async function gitText(args: string[], call: GitCall): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of gitRecords(args, call, 10)) parts.push(part, Buffer.from('\n'));
  return Buffer.concat(parts).toString('utf8');
}

/** The repository top-level directory holding `dir`, or null outside a work tree. */
export async function repoRoot(dir: string): Promise<string | null> {
  try {
    return (await gitText(['rev-parse', '--show-toplevel'], { cwd: dir })).trim() || null;
  } catch (error) {
    if (error instanceof GitError) return null;
    throw error;
  }
}

/**
 * Streams `git cat-file --batch` for blob ids, yielding each blob's content. Blobs missing from
 * the object store are skipped.
 */
export async function* catBlobs(
  ids: string[],
  cwd: string,
): AsyncGenerator<{ id: string; content: Buffer }> {
  const child = spawn('git', [...SAFE_CONFIG, 'cat-file', '--batch'], {
    cwd,
    env: gitEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    if (stderr.length < STDERR_KEEP) stderr += d;
  });
  const closed = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  child.stdin.end(ids.map((id) => `${id}\n`).join(''));
  // Chunks are collected until a whole blob is in, then joined once: joining on every chunk
  // would copy a large blob over and over.
  let parts: Buffer[] = [];
  let held = 0;
  let want: { id: string; size: number } | null = null;
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
    parts.push(chunk);
    held += chunk.length;
    for (;;) {
      const need = want === null ? 0 : want.size + 1;
      if (want !== null && held < need) break;
      const buffered = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      parts = [buffered];
      if (want === null) {
        const nl = buffered.indexOf(10);
        if (nl < 0) break;
        const header = buffered.subarray(0, nl).toString('latin1').split(' ');
        parts = [buffered.subarray(nl + 1)];
        held = parts[0]!.length;
        if (header[1] !== 'missing') want = { id: header[0]!, size: Number(header[2]) };
        continue;
      }
      yield { id: want.id, content: buffered.subarray(0, want.size) };
      parts = [buffered.subarray(need)];
      held = parts[0]!.length;
      want = null;
    }
  }
  const code = await closed;
  if (code !== 0) throw new GitError(['cat-file'], code, stderr);
}
