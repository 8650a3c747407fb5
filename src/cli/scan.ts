import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { scanText } from '../guard/index.js';
import { compileAllowList } from '../scan/allow.js';
import { readBaseline, writeBaseline } from '../scan/baseline.js';
import { readScanSettings, type ScanSettings } from '../scan/config.js';
import type { ScanSession } from '../scan/content.js';
import { ScanError } from '../scan/errors.js';
import { scanHistory } from '../scan/history.js';
import { scanLogs, scanStdin } from '../scan/logs.js';
import {
  formatCsv,
  formatJson,
  formatSarif,
  formatSummary,
  formatText,
  printable,
  type ReportFormat,
  type ScanReport,
} from '../scan/report.js';
import { scanRuleOptions } from '../scan/rules.js';
import { scanStaged } from '../scan/staged.js';
import { scanTree } from '../scan/tree.js';
import { emptyStats, type ScanFinding } from '../scan/types.js';
import type { KeyCollector } from '../scan/verify.js';
import { exitCodes, UsageError } from './output.js';

interface ScanFlags {
  staged?: boolean;
  history?: boolean;
  since?: string;
  all?: boolean;
  logs?: string[];
  ignore: boolean;
  includeBinary?: boolean;
  pii?: boolean;
  enable?: string;
  disable?: string;
  allowPath?: string[];
  allowPattern?: string[];
  baseline?: string;
  updateBaseline?: boolean;
  verify?: boolean;
  baseUrl?: string;
  verifyTimeout?: string;
  format: string;
  output?: string;
  config?: string;
}

const FORMATS: ReportFormat[] = ['text', 'json', 'sarif', 'csv'];
const DEFAULT_BASE_URL = 'https://api.mistral.ai';
// A progress line is worth printing only when a history scan takes more than a moment.
const PROGRESS_FROM = 300;

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function checkFlags(paths: string[], flags: ScanFlags): void {
  const modes = [flags.staged, flags.history, flags.logs !== undefined, paths.length > 0];
  if (modes.filter(Boolean).length > 1) {
    throw new UsageError('choose one of PATH..., --staged, --history or --logs');
  }
  if ((flags.since !== undefined || flags.all) && !flags.history) {
    throw new UsageError('--since and --all go with --history');
  }
  if (paths.includes('-') && paths.length > 1) {
    throw new UsageError('- (standard input) cannot be mixed with other paths');
  }
  if (!FORMATS.includes(flags.format as ReportFormat)) {
    throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
  }
  if (flags.verifyTimeout !== undefined && !/^[1-9][0-9]{0,5}$/.test(flags.verifyTimeout)) {
    throw new UsageError('--verify-timeout must be a number of milliseconds');
  }
}

function buildSession(flags: ScanFlags, settings: ScanSettings): ScanSession {
  let options: ScanSession['options'];
  let allow: ScanSession['allow'];
  try {
    options = scanRuleOptions({
      pii: flags.pii,
      enable: list(flags.enable),
      disable: list(flags.disable),
    });
    // Rules compile on first use; an unknown detector id must fail here, as a usage error.
    scanText('', options);
    allow = compileAllowList({
      paths: [...settings.allowPaths, ...(flags.allowPath ?? [])],
      patterns: [...settings.allowPatterns, ...(flags.allowPattern ?? [])],
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return {
    options,
    allow,
    stats: emptyStats(),
    warn: (message) => process.stderr.write(`warning: ${printable(message)}\n`),
  };
}

function progress(): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (done, total) => {
    if (total < PROGRESS_FROM) return;
    const now = Date.now();
    if (now - last < 100 && done < total) return;
    last = now;
    const width = 30;
    const filled = Math.round((done / total) * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    process.stderr.write(`\r[${bar}] ${done}/${total} commits`);
    if (done >= total) process.stderr.write('\r\u001b[K');
  };
}

async function runSources(
  paths: string[],
  flags: ScanFlags,
  session: ScanSession,
): Promise<ScanFinding[]> {
  const cwd = process.cwd();
  const includeBinary = flags.includeBinary === true;
  if (flags.staged) return scanStaged({ cwd, includeBinary }, session);
  if (flags.history) {
    return scanHistory(
      { cwd, since: flags.since, all: flags.all, includeBinary, onProgress: progress() },
      session,
    );
  }
  if (flags.logs) return scanLogs(flags.logs, session, { includeBinary });
  if (paths[0] === '-') return scanStdin(process.stdin, session, { includeBinary });
  return scanTree(
    { paths: paths.length > 0 ? paths : ['.'], cwd, noIgnore: !flags.ignore, includeBinary },
    session,
  );
}

function order(findings: ScanFinding[]): ScanFinding[] {
  // History findings keep commit order within a file; the others read top to bottom.
  return findings.sort(
    (a, b) =>
      (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) ||
      (a.source === 'history' ? 0 : a.line - b.line || a.column - b.column),
  );
}

// The base URL a found key may be sent to comes from the command line, the process
// environment or a config file named explicitly; never from a `.env` or `mistral-guard.yaml`
// that happens to sit in the directory being scanned, which could send the keys elsewhere.
async function verifyBaseUrl(flags: ScanFlags): Promise<string> {
  // Loaded on demand: most scans never verify, and the config schema is slow to load.
  const { checkVerifyBaseUrl } = await import('../scan/verify.js');
  let base = flags.baseUrl ?? process.env.MISTRAL_BASE_URL;
  if (base === undefined && flags.config) {
    const { loadConfig } = await import('../config/load.js');
    const config = await loadConfig({ configPath: flags.config, env: { ...process.env } });
    base = config.upstream.baseUrl;
  }
  try {
    return checkVerifyBaseUrl(base ?? DEFAULT_BASE_URL);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function render(report: ScanReport, format: ReportFormat, color: boolean): string {
  if (format === 'json') return formatJson(report);
  if (format === 'sarif') return formatSarif(report);
  if (format === 'csv') return formatCsv(report);
  return formatText(report, { color });
}

function useColor(toFile: boolean): boolean {
  if (toFile || !process.stdout.isTTY) return false;
  return process.env.NO_COLOR === undefined || process.env.NO_COLOR === '';
}

function versionOf(command: Command): string {
  let root = command;
  while (root.parent) root = root.parent;
  return root.version() ?? '0.0.0';
}

async function verify(findings: ScanFinding[], keys: KeyCollector, flags: ScanFlags, base: string) {
  const checked = await keys.verify(findings, {
    baseUrl: base,
    timeoutMs: flags.verifyTimeout ? Number(flags.verifyTimeout) : undefined,
  });
  if (checked > 0) process.stderr.write(`Checked ${checked} Mistral key(s) against ${base}.\n`);
}

async function scan(paths: string[], flags: ScanFlags, command: Command): Promise<void> {
  const all = { ...flags, ...(command.optsWithGlobals() as { config?: string }) } as ScanFlags;
  checkFlags(paths, all);
  const settings = await readScanSettings({ cwd: process.cwd(), configPath: all.config });
  const baseline = all.baseline ?? settings.baseline;
  if (all.updateBaseline && !baseline) {
    throw new UsageError('--update-baseline needs --baseline FILE or scan.baseline in the config');
  }
  const session = buildSession(all, settings);
  // Read before the scan, so a bad baseline fails at once rather than after a long history.
  const accepted =
    baseline && !all.updateBaseline ? await readBaseline(baseline) : new Set<string>();
  const base = all.verify ? await verifyBaseUrl(all) : undefined;
  const keys = base ? (await import('../scan/verify.js')).createKeyCollector() : undefined;
  if (keys) session.onValue = keys.collect;
  const found = order(await runSources(paths, all, session));

  if (baseline && all.updateBaseline) {
    const count = await writeBaseline(baseline, found);
    process.stderr.write(`Baseline written to ${printable(baseline)}: ${count} accepted.\n`);
    return;
  }
  const findings = found.filter((f) => !accepted.has(f.fingerprint));
  session.stats.baselined = found.length - findings.length;
  if (base && keys) await verify(findings, keys, all, base);

  const report: ScanReport = { findings, stats: session.stats, version: versionOf(command) };
  const text = render(report, all.format as ReportFormat, useColor(all.output !== undefined));
  if (all.output) await writeFile(all.output, text);
  else process.stdout.write(text);
  process.stderr.write(`${formatSummary(report)}\n`);
  if (findings.length > 0) process.exitCode = exitCodes.failure;
  else if (session.stats.errors > 0) process.exitCode = exitCodes.usage;
}

/**
 * Wraps a command action so that a ScanError (a missing path, no repository, a bad revision)
 * ends it as a usage error: its message is printed as is and the exit code is 2.
 *
 * @example
 * command.action(withScanErrors(async (path) => { ... }));
 */
export function withScanErrors<A extends unknown[]>(
  action: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await action(...args);
    } catch (error) {
      if (error instanceof ScanError) throw new UsageError(error.message);
      throw error;
    }
  };
}

/**
 * Adds `scan` to the program: finds secrets in the working tree, the staged files, the git
 * history, log files or standard input, with the content guard's rule set. Exit codes: 0 nothing
 * found, 1 findings, 2 bad usage or a file that could not be read.
 */
export function registerScanCommand(program: Command): void {
  program
    .command('scan')
    .description('find secrets in files, staged changes, git history or logs')
    .argument('[paths...]', 'files or directories (default: .); - reads standard input')
    .option('--staged', 'scan every staged file, as it is in the index')
    .option('--history', 'scan every commit of HEAD (with --all, of every ref)')
    .option('--since <rev>', 'with --history: only commits not reachable from REV')
    .option('--all', 'with --history: every branch, tag and remote, and the stash')
    .option('--logs <files...>', 'scan log files, gzip-compressed or not')
    .option('--no-ignore', 'include files that .gitignore leaves out')
    .option('--include-binary', 'scan binary files instead of skipping them')
    .option('--pii', 'also report personal data (emails, phone numbers, cards, ...)')
    .option('--enable <ids>', 'extra detectors, comma-separated (e.g. ip_address)')
    .option('--disable <ids>', 'detectors to skip, comma-separated')
    .option('--allow-path <glob>', 'also never scan paths matching GLOB (repeatable)', collect)
    .option('--allow-pattern <regex>', 'also accept values matching REGEX (repeatable)', collect)
    .option('--baseline <file>', 'accept the findings listed in FILE (default: scan.baseline)')
    .option('--update-baseline', 'write the current findings to the baseline file')
    .option('--verify', 'check whether each Mistral key found is live, revoked or unknown')
    .option('--base-url <url>', 'API origin for --verify (default: MISTRAL_BASE_URL or Mistral)')
    .option('--verify-timeout <ms>', 'timeout of each --verify request (default: 5000)')
    .option('--format <format>', 'text, json, sarif or csv', 'text')
    .option('-o, --output <file>', 'write the report to FILE instead of stdout')
    .action(withScanErrors(scan));
}
