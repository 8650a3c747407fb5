import { resolve } from 'node:path';
import type { Command } from 'commander';
import { readBaseline } from '../scan/baseline.js';
import { type DoctorItem, runDoctor } from '../scan/doctor.js';
import { printable } from '../scan/report.js';
import { exitCodes, out, outJson, UsageError } from './output.js';
import { withScanErrors } from './scan.js';

interface DoctorFlags {
  format: string;
  history: boolean;
  baseline?: string;
  maxKeyAge: string;
  config?: string;
}

const MARKS: Record<DoctorItem['status'], string> = {
  pass: 'PASS',
  warn: 'WARN',
  fail: 'FAIL',
  skip: 'SKIP',
};

function printItems(items: DoctorItem[]): void {
  for (const item of items) {
    const [first, ...more] = item.detail.split('\n').map(printable);
    out(`${MARKS[item.status]}  ${item.title.padEnd(40)} ${first}`);
    for (const line of more) out(`${' '.repeat(46)} ${line}`);
    if (item.fix && item.status !== 'pass') out(`${' '.repeat(46)} fix: ${item.fix}`);
  }
  const count = (s: DoctorItem['status']) => items.filter((i) => i.status === s).length;
  out('');
  out(`${count('pass')} passed, ${count('warn')} warnings, ${count('fail')} failed.`);
}

async function doctor(path: string | undefined, flags: DoctorFlags, command: Command) {
  const all = { ...flags, ...(command.optsWithGlobals() as { config?: string }) };
  if (all.format !== 'text' && all.format !== 'json') {
    throw new UsageError('--format must be text or json');
  }
  if (!/^[1-9][0-9]{0,4}$/.test(all.maxKeyAge)) {
    throw new UsageError('--max-key-age must be a number of days');
  }
  const items = await runDoctor({
    dir: resolve(path ?? '.'),
    // Relative to where the command runs, as every other path on the command line.
    configPath: all.config === undefined ? undefined : resolve(all.config),
    history: all.history,
    baseline: all.baseline ? await readBaseline(all.baseline) : undefined,
    maxKeyAgeDays: Number(all.maxKeyAge),
  });
  if (all.format === 'json') outJson({ items, ok: !items.some((i) => i.status === 'fail') });
  else printItems(items);
  if (items.some((i) => i.status === 'fail')) process.exitCode = exitCodes.failure;
}

/**
 * Adds `doctor [PATH]`: the security checklist of a project and its gateway configuration, each
 * item pass, warn or fail with its fix. Exit code 1 when an item fails.
 */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('run the security checklist on a project and its configuration')
    .argument('[path]', 'project directory (default: .)')
    .option('--format <format>', 'text or json', 'text')
    .option('--no-history', 'do not scan the git history')
    .option('--baseline <file>', 'accept the findings listed in FILE (default: scan.baseline)')
    .option('--max-key-age <days>', 'rotation period of virtual keys', '90')
    .action(withScanErrors(doctor));
}
