import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { CLI } from '../support/processes.js';

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A fake key with the shape of a Mistral key, random per call, so a test that finds it in some
 * output knows the scanner put it there. It always mixes upper case, lower case and digits, as
 * the detector asks of a real key.
 */
export function fakeMistralKey(): string {
  for (;;) {
    let key = '';
    for (const b of randomBytes(32)) key += BASE62[b % 62];
    if (/[A-Z]/.test(key) && /[a-z]/.test(key) && /[0-9]/.test(key)) return key;
  }
}

/** A scratch directory removed after the test. */
export function scratch(t: TestContext, prefix = 'mg-scan-'): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// A bare environment: the developer's git config, name and hooks must not change a test.
function gitEnv(home: string, date?: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.invalid',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.invalid',
    ...(date ? { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date } : {}),
  };
}

/** A git repository built by a test. */
export interface Repo {
  dir: string;
  /** Runs git and returns its trimmed stdout; throws on failure. */
  git(...args: string[]): string;
  /** Writes a file (parents created). */
  write(path: string, content: string | Buffer): void;
  /** Stages everything and commits; returns the new commit id. */
  commit(message: string, date?: string): string;
}

/** Creates a repository (branch `main`) in a scratch directory. */
export function tempRepo(t: TestContext): Repo {
  const dir = scratch(t, 'mg-scan-repo-');
  const run = (args: string[], date?: string): string => {
    const r = spawnSync('git', args, { cwd: dir, env: gitEnv(dir, date), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  run(['init', '-q', '-b', 'main']);
  return {
    dir,
    git: (...args) => run(args),
    write(path, content) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), content);
    },
    commit(message, date) {
      run(['add', '-A']);
      run(['commit', '-q', '--allow-empty', '-m', message], date);
      return run(['rev-parse', 'HEAD']);
    },
  };
}

/** The result of one CLI run. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the compiled CLI in `cwd` with a bare environment (HOME is `cwd`, so no global git
 * config applies). Every output is also pushed to `outputs` when given, for canary checks.
 */
export function cli(
  args: string[],
  options: {
    cwd: string;
    input?: string | Buffer;
    env?: Record<string, string>;
    outputs?: string[];
  },
): Promise<Run> {
  const proc = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: { ...gitEnv(options.cwd), ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => {
    stdout += d;
  });
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  proc.stdin.end(options.input ?? '');
  return new Promise((resolve) =>
    proc.once('close', (code) => {
      options.outputs?.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** Parses the JSON report of `scan --format json`. */
export function findingsOf(run: Run): Array<Record<string, unknown>> {
  return (JSON.parse(run.stdout) as { findings: Array<Record<string, unknown>> }).findings;
}

/** The fields a test pins down exactly. */
export function brief(findings: Array<Record<string, unknown>>): string[] {
  return findings.map((f) => `${f.file}:${f.line}:${f.column} ${f.rule}`);
}
