import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  checkGitignore,
  fixGitignore,
  type GitignoreCheck,
  type PatternCheck,
} from '../scan/gitignore.js';
import { printable } from '../scan/report.js';
import { exitCodes, out, outJson, UsageError } from './output.js';
import { withScanErrors } from './scan.js';

const LABELS: Record<PatternCheck['status'], string> = {
  ignored: 'pass',
  local: 'warn',
  missing: 'fail',
};

function explain(p: PatternCheck): string {
  if (p.status === 'ignored') return `ignored (${printable(p.rule ?? '')})`;
  if (p.status === 'local') {
    return `ignored only in this clone (${printable(p.rule ?? '')}); add it to .gitignore`;
  }
  return p.rule ? `not ignored: ${printable(p.rule)} un-ignores it` : 'not ignored';
}

function printCheck(check: GitignoreCheck, added: string[]): void {
  for (const p of check.patterns)
    out(`  ${LABELS[p.status]}  ${p.pattern.padEnd(14)} ${explain(p)}`);
  if (added.length > 0) out(`  added to .gitignore: ${added.join(' ')}`);
  if (check.tracked.length === 0) return;
  out('');
  out('Tracked files that should not be in the repository:');
  for (const file of check.tracked) out(`  fail  ${printable(file)}`);
  out('Stop tracking each with `git rm --cached -- <file>`, then rotate what it held.');
}

/** True when nothing fails: every pattern ignored (locally at least) and nothing tracked. */
export function gitignorePasses(check: GitignoreCheck): boolean {
  return check.tracked.length === 0 && check.patterns.every((p) => p.status !== 'missing');
}

async function gitignore(
  path: string | undefined,
  flags: { fix?: boolean; format: string },
): Promise<void> {
  if (flags.format !== 'text' && flags.format !== 'json') {
    throw new UsageError('--format must be text or json');
  }
  const dir = resolve(path ?? '.');
  let check = await checkGitignore(dir);
  if (!check) throw new UsageError('check gitignore needs a git repository');
  const added = flags.fix ? await fixGitignore(check) : [];
  if (added.length > 0) check = (await checkGitignore(dir))!;
  if (flags.format === 'json') outJson({ ...check, added, ok: gitignorePasses(check) });
  else printCheck(check, added);
  if (!gitignorePasses(check)) process.exitCode = exitCodes.failure;
}

/**
 * Adds `check gitignore [PATH] [--fix]`: whether `.env`, `.env.local`, `.env.*.local`, `*.pem`,
 * `*.key` and `secrets/` are ignored by git's own rules, and which tracked files match them.
 * Exit code 1 when a pattern is not ignored or such a file is tracked.
 */
export function registerCheckCommands(program: Command): void {
  const check = program.command('check').description('project security checks');
  check
    .command('gitignore')
    .description('check that files holding secrets are ignored by git')
    .argument('[path]', 'directory of the project (default: .)')
    .option('--fix', 'append the missing patterns to .gitignore')
    .option('--format <format>', 'text or json', 'text')
    .action(withScanErrors(gitignore));
}
