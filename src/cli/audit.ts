import type { Command } from 'commander';
import { isAuditError } from '../audit/errors.js';
import type { AuditFilter, AuditTrail, ChainedAuditEvent, StatsRow } from '../audit/trail.js';
import { type VerifyReport, verifyTrail } from '../audit/verify.js';
import { openAuditTrail } from '../store/open.js';
import { type CliContext, cliContext } from './context.js';
import { exitCodes, out, UsageError } from './output.js';

const DEFAULT_TAIL = 20;
const MAX_TAIL = 10_000;
const DEFAULT_QUERY = 1000;
const MAX_QUERY = 1_000_000;
// C0 and C1 controls: model names and paths come from clients, and a value printed raw could
// carry terminal escape sequences into the operator's shell.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
const DURATION = /^(\d{1,6})(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const FILTER_VALUE = /^[\x21-\x7e]{1,128}$/;

type Config = CliContext['config'];

interface FilterFlags {
  since?: string;
  until?: string;
  key?: string;
  model?: string;
  status?: string;
  action?: string;
}

/**
 * `mistral-guard audit ...`: reads, verifies and prunes the audit trail, on SQLite or on
 * PostgreSQL as the configuration says.
 */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('read, verify and prune the audit trail');
  audit
    .command('tail')
    .description('print the most recent audit events, oldest first')
    .option('-n, --lines <n>', `how many events (default ${DEFAULT_TAIL}, at most ${MAX_TAIL})`)
    .option('--json', 'one JSON object per line')
    .action(async (opts: { lines?: string; json?: boolean }, command: Command) => {
      const n = parseCount(opts.lines, '-n', DEFAULT_TAIL, MAX_TAIL);
      const events = await withTrail(command, (trail) => trail.latest({}, n));
      if (opts.json) for (const event of events) out(JSON.stringify(event));
      else if (events.length === 0) process.stderr.write('no audit events yet\n');
      else printEvents(events);
    });
  filterOptions(
    audit
      .command('query')
      .description('print the events that match, oldest first')
      .option('--limit <n>', `most events (default ${DEFAULT_QUERY})`)
      .option('--json', 'one JSON object per line')
      .option('--csv', 'CSV with a header line'),
  ).action(query);
  filterOptions(
    audit
      .command('export')
      .description('write every matching event to stdout, oldest first')
      .option('--format <format>', 'jsonl or csv (default jsonl)'),
  ).action(exportEvents);
  filterOptions(
    audit
      .command('stats')
      .description('requests, tokens, errors and blocks per UTC day, key and model')
      .option('--json', 'print JSON')
      .option('--csv', 'CSV with a header line'),
  ).action(stats);
  audit
    .command('verify')
    .description('check the hash chains and checkpoints; exit 1 when the trail was tampered with')
    .option('--json', 'print the report as JSON')
    .action(verify);
  audit
    .command('prune')
    .description('remove events older than the retention period, keeping the rest verifiable')
    .option('--days <n>', 'keep this many days (default: audit.retentionDays)')
    .action(prune);
}

function filterOptions(command: Command): Command {
  return command
    .option('--since <when>', 'from a duration ago (1h, 30m, 7d) or a UTC date/time')
    .option('--until <when>', 'before a duration ago or a UTC date/time')
    .option('--key <id>', 'one virtual key id')
    .option('--model <model>', 'one model')
    .option('--status <status>', 'ok or error')
    .option('--action <action>', 'one action, e.g. chat.complete or admin.key.revoke');
}

async function query(
  flags: FilterFlags & { limit?: string; json?: boolean; csv?: boolean },
  command: Command,
) {
  const filter = parseFilter(flags);
  const limit = parseCount(flags.limit, '--limit', DEFAULT_QUERY, MAX_QUERY);
  if (flags.json && flags.csv) throw new UsageError('--json and --csv exclude each other');
  await withTrail(command, async (trail) => {
    const events: ChainedAuditEvent[] = [];
    for await (const event of trail.events(filter, { limit: limit + 1 })) events.push(event);
    const more = events.length > limit;
    if (more) events.pop();
    if (flags.json) for (const event of events) out(JSON.stringify(event));
    else if (flags.csv) printCsv(EVENT_COLUMNS, events.map(eventCells));
    else if (events.length > 0) printEvents(events);
    else process.stderr.write('no matching events\n');
    if (more) {
      process.stderr.write(`more than ${limit} events match: narrow the query or raise --limit\n`);
    }
  });
}

async function exportEvents(flags: FilterFlags & { format?: string }, command: Command) {
  const filter = parseFilter(flags);
  const format = flags.format ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'csv') throw new UsageError('--format must be jsonl or csv');
  await withTrail(command, async (trail) => {
    if (format === 'csv') out(csvLine(EVENT_COLUMNS));
    for await (const event of trail.events(filter)) {
      out(format === 'csv' ? csvLine(eventCells(event)) : JSON.stringify(event));
    }
  });
}

async function stats(flags: FilterFlags & { json?: boolean; csv?: boolean }, command: Command) {
  const filter = parseFilter(flags);
  if (flags.json && flags.csv) throw new UsageError('--json and --csv exclude each other');
  const rows = await withTrail(command, (trail) => trail.stats(filter));
  if (flags.json) {
    out(JSON.stringify(rows, null, 2));
    return;
  }
  const header = ['DAY', 'KEY', 'MODEL', 'REQUESTS', 'TOKENS', 'ERRORS', 'BLOCKS'];
  const cells = rows.map((r: StatsRow) => [
    r.day,
    r.keyId ?? '-',
    r.model ?? '-',
    String(r.requests),
    String(r.totalTokens),
    String(r.errors),
    String(r.blocks),
  ]);
  if (flags.csv)
    printCsv(
      header.map((h) => h.toLowerCase()),
      cells,
    );
  else if (rows.length > 0) printTable([header, ...cells]);
  else process.stderr.write('no matching events\n');
}

async function verify(flags: { json?: boolean }, command: Command) {
  const { config } = await cliContext(command);
  const hmacKey = config.audit.hmacKey?.reveal() ?? null;
  const report = await withTrail(command, (trail) => verifyTrail(trail, { hmacKey }), config);
  if (flags.json) out(JSON.stringify(report, null, 2));
  else printReport(report);
  if (!report.ok) process.exitCode = exitCodes.failure;
}

async function prune(flags: { days?: string }, command: Command) {
  const { config } = await cliContext(command);
  const days =
    flags.days === undefined
      ? config.audit.retentionDays
      : parseCount(flags.days, '--days', 0, 100_000);
  if (days === null) {
    throw new UsageError('no retention period: give --days or set audit.retentionDays');
  }
  const hmacKey = config.audit.hmacKey?.reveal() ?? null;
  const before = new Date(Date.now() - days * UNIT_MS.d);
  const result = await withTrail(command, (trail) => trail.prune(before, hmacKey), config, true);
  out(`pruned ${result.deleted} events older than ${result.cutoff} from ${result.chains} chains`);
}

async function withTrail<T>(
  command: Command,
  run: (trail: AuditTrail) => Promise<T>,
  loaded?: Config,
  write = false,
): Promise<T> {
  const config = loaded ?? (await cliContext(command)).config;
  let trail: AuditTrail;
  try {
    trail = await openAuditTrail(config, { write });
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
  try {
    return await run(trail);
  } finally {
    await trail.close();
  }
}

function parseCount(value: string | undefined, flag: string, fallback: number, max: number) {
  if (value === undefined) return fallback;
  const n = /^\d{1,7}$/.test(value) ? Number(value) : Number.NaN;
  const min = flag === '--days' ? 0 : 1;
  if (!(n >= min && n <= max)) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}`);
  }
  return n;
}

function parseTime(value: string | undefined, flag: string, now: number): Date | undefined {
  if (value === undefined) return undefined;
  const duration = DURATION.exec(value);
  if (duration) {
    return new Date(now - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]);
  }
  // Dates without a zone are read as UTC, as every time the trail prints is.
  const iso = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?)?$/.test(value)
    ? `${value.length === 10 ? `${value}T00:00` : value}Z`
    : value;
  const at = /^\d{4}-\d{2}-\d{2}/.test(iso) ? Date.parse(iso) : Number.NaN;
  if (Number.isNaN(at)) {
    throw new UsageError(`${flag} must be a duration (30m, 1h, 7d) or a UTC date (2026-01-31)`);
  }
  return new Date(at);
}

function parseValue(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  if (!FILTER_VALUE.test(value))
    throw new UsageError(`${flag} must be 1 to 128 visible characters`);
  return value;
}

function parseFilter(flags: FilterFlags): AuditFilter {
  const now = Date.now();
  if (flags.status !== undefined && flags.status !== 'ok' && flags.status !== 'error') {
    throw new UsageError('--status must be ok or error');
  }
  const filter: AuditFilter = {
    since: parseTime(flags.since, '--since', now),
    until: parseTime(flags.until, '--until', now),
    keyId: parseValue(flags.key, '--key'),
    model: parseValue(flags.model, '--model'),
    action: parseValue(flags.action, '--action'),
    status: flags.status as AuditFilter['status'],
  };
  return Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined));
}

const EVENT_COLUMNS = [
  'time',
  'id',
  'chain_id',
  'seq',
  'request_id',
  'action',
  'method',
  'path',
  'key_id',
  'key_name',
  'environment',
  'model',
  'stream',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'success',
  'status',
  'error_code',
  'upstream_status',
  'client_ip',
  'user_agent',
  'latency_ms',
  'guard_action',
  'guard_findings',
  'prev_hash',
  'hash',
  'request_body',
  'response_body',
];

function eventCells(e: ChainedAuditEvent): string[] {
  const text = (value: unknown) => (value === null || value === undefined ? '' : String(value));
  return [
    e.time,
    e.id,
    e.chainId,
    String(e.seq),
    e.requestId,
    e.action,
    e.method,
    e.path,
    text(e.keyId),
    text(e.keyName),
    text(e.environment),
    text(e.model),
    String(e.stream),
    text(e.promptTokens),
    text(e.completionTokens),
    text(e.totalTokens),
    String(e.success),
    String(e.status),
    text(e.errorCode),
    text(e.upstreamStatus),
    text(e.clientIp),
    text(e.userAgent),
    String(e.latencyMs),
    text(e.guard?.action),
    e.guard ? JSON.stringify(e.guard.findings) : '',
    e.prevHash,
    e.hash,
    text(e.bodies?.request),
    text(e.bodies?.response),
  ];
}

/**
 * One CSV cell. Controls are masked, quotes doubled, and a cell a spreadsheet would run as a
 * formula (starting with = + - @) gets a leading quote: user agents and paths come from clients.
 */
function csvCell(value: string): string {
  let cell = value.replace(CONTROLS, '?');
  if (/^[=+\-@]/.test(cell)) cell = `'${cell}`;
  return /[",\s]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell;
}

function csvLine(cells: string[]): string {
  return cells.map(csvCell).join(',');
}

function printCsv(header: string[], rows: string[][]): void {
  out(csvLine(header));
  for (const row of rows) out(csvLine(row));
}

function printEvents(events: ChainedAuditEvent[]): void {
  printTable([
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
  ]);
}

function printTable(table: string[][]): void {
  const rows = table.map((row) => row.map((cell) => cell.replace(CONTROLS, '?')));
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

function printReport(report: VerifyReport): void {
  const c = report.checkpoints;
  out(
    `audit trail: ${report.chains} chain(s), ${report.events} event(s), ${c.total} checkpoint(s)`,
  );
  if (!report.keyGiven) {
    out(
      c.unchecked > 0
        ? 'checkpoint signatures not checked: no key (set MISTRAL_GUARD_AUDIT_HMAC_KEY); ' +
            `${c.unchecked} signed, ${c.unsigned} unsigned`
        : 'checkpoints are unsigned: no key is configured (MISTRAL_GUARD_AUDIT_HMAC_KEY), ' +
            'so a rewrite of every hash after an edit would go unnoticed',
    );
  } else {
    out(`checkpoint signatures: ${c.valid} valid, ${c.invalid} invalid, ${c.unsigned} unsigned`);
  }
  if (report.ok) {
    out('OK: every chain is intact');
    return;
  }
  for (const p of report.problems) {
    const where = p.seq === null ? '' : ` at seq ${p.seq}`;
    const event = p.eventId ? ` (event ${p.eventId})` : '';
    out(`BROKEN: chain ${p.chainId}${where}${event}: ${p.message} [${p.kind}]`);
  }
  if (report.problemCount > report.problems.length) {
    out(`... and ${report.problemCount - report.problems.length} more problem(s)`);
  }
}
