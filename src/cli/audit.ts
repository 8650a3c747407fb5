import type { Command } from 'commander';
import { isAuditError } from '../audit/errors.js';
import { tailEvents } from '../audit/reader.js';
import type { StoredAuditEvent } from '../audit/sqlite-schema.js';
import { cliContext } from './context.js';
import { out, UsageError } from './output.js';

const DEFAULT_TAIL = 20;
const MAX_TAIL = 10_000;
// C0 and C1 controls: model names and paths come from clients, and a value printed raw could
// carry terminal escape sequences into the operator's shell.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * `mistral-guard audit ...`: reads the audit trail. Only `tail` exists so far; `query`,
 * `export`, `verify` and `stats` belong under the same group.
 */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('read the audit trail');
  audit
    .command('tail')
    .description('print the most recent audit events, oldest first')
    .option('-n, --lines <n>', `how many events (default ${DEFAULT_TAIL}, at most ${MAX_TAIL})`)
    .option('--json', 'one JSON object per line')
    .action(async (opts: { lines?: string; json?: boolean }, command: Command) => {
      const n = parseCount(opts.lines);
      const { config } = await cliContext(command);
      const events = readTail(config.dataDir, n);
      if (opts.json) {
        for (const event of events) out(JSON.stringify(event));
      } else if (events.length === 0) {
        process.stderr.write('no audit events yet\n');
      } else {
        printTable(events);
      }
    });
}

function parseCount(value: string | undefined): number {
  if (value === undefined) return DEFAULT_TAIL;
  const n = /^\d{1,6}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 1 && n <= MAX_TAIL)) {
    throw new UsageError(`-n must be an integer from 1 to ${MAX_TAIL}`);
  }
  return n;
}

function readTail(dataDir: string, n: number): StoredAuditEvent[] {
  try {
    return tailEvents(dataDir, n);
  } catch (error) {
    // A missing store is a wrong --data-dir far more often than a fault: say where to look.
    if (isAuditError(error, 'audit_store_missing')) {
      throw new UsageError(
        'no audit trail in the data directory; point --data-dir (or MISTRAL_GUARD_DATA_DIR) ' +
          'at the directory the gateway runs with',
      );
    }
    throw error;
  }
}

function printTable(events: StoredAuditEvent[]): void {
  const rows = [
    ['TIME (UTC)', 'STATUS', 'ACTION', 'KEY', 'MODEL', 'TOKENS', 'LATENCY', 'ERROR'],
    ...events.map((e) => [
      e.time.slice(0, 19).replace('T', ' '),
      String(e.status),
      e.action,
      e.keyName ?? e.keyId ?? '-',
      e.model ?? '-',
      e.totalTokens === null ? '-' : String(e.totalTokens),
      `${Math.round(e.latencyMs)}ms`,
      e.errorCode ?? '-',
    ]),
  ].map((row) => row.map((cell) => cell.replace(CONTROLS, '?')));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) {
    out(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
  }
}
