import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { canaryUpstreamKey } from '../support/canary.js';
import { CLI, ROOT, runCli } from '../support/processes.js';

const STACK_LINE = /^\s+at /m;

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'mg-cli-'));
}

/** Runs the CLI with its stdout pipe closed by the reader before anything is written to it. */
function runWithClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout.destroy();
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => proc.once('close', (code) => resolve({ code, stderr })));
}

/** A module preloaded into the CLI that throws once the command has finished its work. */
async function strayErrorModule(kind: 'throw' | 'reject', message: string): Promise<string> {
  const path = join(await tempDir(), 'stray.mjs');
  const error = `new Error(${JSON.stringify(message)})`;
  const act =
    kind === 'throw' ? `setTimeout(() => { throw ${error}; })` : `Promise.reject(${error})`;
  await writeFile(path, `process.once('beforeExit', () => { ${act}; });\n`);
  return pathToFileURL(path).href;
}

test('a reader that closes the pipe early ends the command quietly', async () => {
  const dataDir = await tempDir();
  for (const args of [
    ['--data-dir', dataDir, 'keys', 'list'],
    ['--data-dir', dataDir, 'keys', 'list', '--json'],
    ['--help'],
  ]) {
    const { code, stderr } = await runWithClosedStdout(args);
    assert.equal(stderr, '', args.join(' '));
    assert.equal(code, 0, args.join(' '));
  }
});

test('an error escaping every command prints one line, without its stack or message', async () => {
  const secret = canaryUpstreamKey();
  for (const kind of ['throw', 'reject'] as const) {
    const preload = await strayErrorModule(kind, `failed with ${secret}`);
    const result = await runCli(['--version'], { env: { NODE_OPTIONS: `--import=${preload}` } });
    assert.equal(result.stderr, 'error: the command failed\n', kind);
    assert.equal(result.code, 2, kind);
  }
});

test('an unexpected error inside a command prints its code only', async () => {
  const dir = await tempDir();
  const notADirectory = join(dir, 'file');
  await writeFile(notADirectory, '');
  const result = await runCli(['--data-dir', notADirectory, 'keys', 'list']);
  assert.match(result.stderr, /^error: the command failed \([A-Z]+\)\n$/);
  assert.doesNotMatch(result.stderr, STACK_LINE);
  assert.equal(result.code, 2);
});

test('configuration problems and a missing upstream key are reported together', async () => {
  const other = canaryUpstreamKey();
  const result = await runCli(['--env', 'staging', 'serve'], {
    cwd: await tempDir(),
    env: { MISTRAL_GUARD_PORT: '99999', MISTRAL_API_KEY_PRODUCTION: other },
  });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /invalid configuration \(2 problems\)/);
  assert.match(result.stderr, /server\.port \[from MISTRAL_GUARD_PORT\]/);
  assert.match(
    result.stderr,
    /environment "staging" \(set by --env\): looked in MISTRAL_API_KEY_STAGING/,
  );
  assert.ok(!result.stderr.includes(other.slice(0, 8)));
  assert.doesNotMatch(result.stderr, STACK_LINE);

  const unknown = await runCli(['--env', 'nowhere', 'keys', 'list'], { cwd: await tempDir() });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /environment \[from --env\]: environment "nowhere" has no profile/);
});
