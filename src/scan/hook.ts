import { chmod, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ScanError } from './errors.js';
import { gitText, repoRoot } from './git.js';

/**
 * The git pre-commit hook that runs `mistral-guard scan --staged`. An existing hook is never
 * overwritten: it is moved aside and run first by ours, and put back on uninstall.
 */

/** The line that marks a hook as ours. */
export const HOOK_MARKER = '# mistral-guard pre-commit hook';
/** Where a hook found in place is moved, to be run before ours. */
export const PREVIOUS_HOOK = 'pre-commit.before-mistral-guard';

/** What `installHook` did. */
export interface HookInstall {
  path: string;
  /** `installed` fresh; `updated` our own hook; `chained` after moving another hook aside. */
  outcome: 'installed' | 'updated' | 'chained';
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The hook script. It prefers the project's own install, then one on PATH, then the CLI that
 * installed the hook, so it keeps working when the package is updated or moved.
 */
export function hookScript(fallback: { node: string; cli: string }): string {
  return `#!/bin/sh
${HOOK_MARKER} (mistral-guard hook install).
# Refuses a commit whose staged files hold a secret. Skip it once with: git commit --no-verify
hooks_dir=$(dirname "$0")
if [ -x "$hooks_dir/${PREVIOUS_HOOK}" ]; then
  "$hooks_dir/${PREVIOUS_HOOK}" "$@" || exit $?
fi
if [ -x ./node_modules/.bin/mistral-guard ]; then
  exec ./node_modules/.bin/mistral-guard scan --staged
elif command -v mistral-guard >/dev/null 2>&1; then
  exec mistral-guard scan --staged
else
  exec ${shellQuote(fallback.node)} ${shellQuote(fallback.cli)} scan --staged
fi
`;
}

async function hooksDir(cwd: string): Promise<string> {
  const root = await repoRoot(cwd);
  if (!root) throw new ScanError('the pre-commit hook needs a git repository');
  // Honours core.hooksPath, so a project using another hook manager's directory gets it there.
  const dir = (await gitText(['rev-parse', '--git-path', 'hooks'], { cwd: root })).trim();
  return resolve(root, dir);
}

async function readOptional(path: string): Promise<string | null> {
  return readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
}

/**
 * Installs the pre-commit hook in the repository holding `cwd`.
 *
 * @example
 * const { path, outcome } = await installHook(process.cwd(), { node: process.execPath, cli });
 */
export async function installHook(
  cwd: string,
  fallback: { node: string; cli: string },
): Promise<HookInstall> {
  const dir = await hooksDir(cwd);
  const path = join(dir, 'pre-commit');
  await mkdir(dir, { recursive: true });
  const existing = await readOptional(path);
  let outcome: HookInstall['outcome'] = 'installed';
  if (existing?.includes(HOOK_MARKER)) outcome = 'updated';
  else if (existing !== null) {
    if ((await readOptional(join(dir, PREVIOUS_HOOK))) !== null) {
      throw new ScanError(`both ${path} and ${PREVIOUS_HOOK} exist; merge them by hand first`);
    }
    await rename(path, join(dir, PREVIOUS_HOOK));
    outcome = 'chained';
  }
  await writeFile(path, hookScript(fallback), { mode: 0o755 });
  await chmod(path, 0o755);
  return { path, outcome };
}

/**
 * Removes our hook and puts back the one it had moved aside. Returns false when the hook in
 * place is not ours (it is left alone).
 *
 * @example
 * await uninstallHook(process.cwd());
 */
export async function uninstallHook(cwd: string): Promise<boolean> {
  const dir = await hooksDir(cwd);
  const path = join(dir, 'pre-commit');
  const existing = await readOptional(path);
  if (!existing?.includes(HOOK_MARKER)) return false;
  await unlink(path);
  if ((await readOptional(join(dir, PREVIOUS_HOOK))) !== null) {
    await rename(join(dir, PREVIOUS_HOOK), path);
  }
  return true;
}
