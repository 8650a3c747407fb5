import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { installHook, uninstallHook } from '../scan/hook.js';
import { printable } from '../scan/report.js';
import { out } from './output.js';
import { withScanErrors } from './scan.js';

// The compiled entry point next to this file, for hooks run where no install is on PATH.
const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

async function install(): Promise<void> {
  const { path, outcome } = await installHook(process.cwd(), { node: process.execPath, cli: CLI });
  const where = printable(path);
  if (outcome === 'updated') out(`Updated the pre-commit hook at ${where}.`);
  else if (outcome === 'chained') {
    out(`Installed the pre-commit hook at ${where}; the hook found there runs first.`);
  } else out(`Installed the pre-commit hook at ${where}.`);
}

async function uninstall(): Promise<void> {
  const removed = await uninstallHook(process.cwd());
  out(removed ? 'Removed the pre-commit hook.' : 'No mistral-guard pre-commit hook to remove.');
}

/**
 * Adds `hook install|uninstall`: a git pre-commit hook running `mistral-guard scan --staged`,
 * which keeps any hook already in place by running it first.
 */
export function registerHookCommands(program: Command): void {
  const hook = program.command('hook').description('git pre-commit hook');
  hook
    .command('install')
    .description('install a pre-commit hook that runs `scan --staged`')
    .action(withScanErrors(install));
  hook
    .command('uninstall')
    .description('remove the hook and restore the one it replaced')
    .action(withScanErrors(uninstall));
}
