import { ruleInfo, severityScore } from './rule-info.js';
import type { ScanFinding, ScanStats } from './types.js';

/**
 * Reports of a scan: text for people, JSON, SARIF 2.1.0 (as GitHub code scanning reads it) and
 * CSV. Each carries previews and fingerprints, never a value. Paths and other strings that came
 * from the scanned repository are printed with control characters replaced, so a file name
 * cannot drive the terminal.
 */

/** Output formats of `scan`. */
export type ReportFormat = 'text' | 'json' | 'sarif' | 'csv';

/** What a report is built from. */
export interface ScanReport {
  findings: ScanFinding[];
  stats: ScanStats;
  /** The tool version, for JSON and SARIF. */
  version: string;
}

// C0 and C1 controls, and the Unicode line and paragraph separators.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** `text` with control characters shown as `?`. */
export function printable(text: string): string {
  return text.replace(CONTROLS, '?');
}

const STYLES = { bold: '1', dim: '2', red: '31', yellow: '33', cyan: '36', green: '32' } as const;

function styler(color: boolean) {
  return (style: keyof typeof STYLES, text: string): string =>
    color ? `\u001b[${STYLES[style]}m${text}\u001b[0m` : text;
}

function severityStyle(severity: string): keyof typeof STYLES {
  if (severity === 'critical' || severity === 'high') return 'red';
  return severity === 'medium' ? 'yellow' : 'dim';
}

/**
 * Text for people, grouped by file in the order files were first reported.
 *
 * @example
 * process.stdout.write(formatText(report, { color: process.stdout.isTTY }));
 */
export function formatText(report: ScanReport, options: { color: boolean }): string {
  const paint = styler(options.color);
  const byFile = new Map<string, ScanFinding[]>();
  for (const f of report.findings) {
    const list = byFile.get(f.file);
    if (list) list.push(f);
    else byFile.set(f.file, [f]);
  }
  const lines: string[] = [];
  for (const [file, findings] of byFile) {
    lines.push(paint('bold', file === '-' ? '(standard input)' : printable(file)));
    for (const f of findings) {
      const where = `${f.line}:${f.column}`.padEnd(9);
      const parts = [
        `  ${where}`,
        paint(severityStyle(f.severity), f.severity.padEnd(8)),
        f.rule.padEnd(20),
        printable(f.preview).padEnd(16),
        paint('dim', `fp ${f.fingerprint.slice(0, 12)}`),
      ];
      if (f.commit) parts.push(paint('cyan', `commit ${f.commit.slice(0, 12)} ${f.authorDate}`));
      if (f.verification) {
        const style =
          f.verification === 'live' ? 'red' : f.verification === 'revoked' ? 'green' : 'dim';
        parts.push(paint(style, f.verification));
      }
      lines.push(parts.join('  ').trimEnd());
    }
    lines.push('');
  }
  return lines.join('\n');
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** One line about what was scanned and set aside, for stderr. */
export function formatSummary(report: ScanReport): string {
  const { findings, stats } = report;
  const files = new Set(findings.map((f) => f.file)).size;
  const head =
    findings.length === 0
      ? 'No secrets found'
      : `${plural(findings.length, 'finding')} in ${plural(files, 'file')}`;
  const scanned = [
    stats.commits > 0 ? plural(stats.commits, 'commit') : plural(stats.files, 'file'),
    stats.skippedBinary > 0 ? `${stats.skippedBinary} binary skipped` : '',
    stats.baselined > 0 ? `${stats.baselined} in baseline` : '',
    stats.allowedInline > 0 ? `${stats.allowedInline} allowed inline` : '',
    stats.allowedByRule > 0 ? `${stats.allowedByRule} allow-listed` : '',
    stats.errors > 0 ? `${stats.errors} unreadable` : '',
  ].filter((s) => s !== '');
  return `${head} (${scanned.join(', ')}).`;
}

function jsonFinding(f: ScanFinding): Record<string, unknown> {
  // Fields are listed one by one: a field added to findings later stays out of reports until
  // someone decides it is safe to show.
  return {
    rule: f.rule,
    category: f.category,
    severity: f.severity,
    file: f.file,
    line: f.line,
    column: f.column,
    endLine: f.endLine,
    endColumn: f.endColumn,
    preview: f.preview,
    fingerprint: f.fingerprint,
    source: f.source,
    ...(f.encoding ? { encoding: f.encoding } : {}),
    ...(f.commit ? { commit: f.commit, authorDate: f.authorDate } : {}),
    ...(f.verification ? { verification: f.verification } : {}),
  };
}

/** The JSON report: `{ version, findings, stats }`. */
export function formatJson(report: ScanReport): string {
  const body = {
    version: report.version,
    findings: report.findings.map(jsonFinding),
    stats: report.stats,
  };
  return `${JSON.stringify(body, null, 2)}\n`;
}

function uri(file: string): string {
  return file.split('/').map(encodeURIComponent).join('/');
}

function sarifRule(id: string, severity: ScanFinding['severity']) {
  const info = ruleInfo(id);
  const { level, score } = severityScore(severity);
  return {
    id,
    // SARIF names are PascalCase identifiers: "Mistral API key" becomes MistralAPIKey.
    name: info.title.replace(/[^A-Za-z0-9]+(\w?)/g, (_, c: string) => c.toUpperCase()),
    shortDescription: { text: `${info.title} in source` },
    fullDescription: { text: `${info.title} written in a file or a commit.` },
    help: { text: info.help },
    defaultConfiguration: { level },
    properties: { tags: ['security', 'secret'], 'security-severity': score, precision: 'high' },
  };
}

function sarifResult(f: ScanFinding, ruleIndex: number) {
  const info = ruleInfo(f.rule);
  const where = f.commit ? ` in commit ${f.commit.slice(0, 12)}` : '';
  return {
    ruleId: f.rule,
    ruleIndex,
    level: severityScore(f.severity).level,
    message: { text: `${info.title} found (${f.preview})${where}. ${info.help}` },
    locations: [
      {
        physicalLocation: {
          artifactLocation: { uri: uri(f.file), uriBaseId: '%SRCROOT%' },
          region: {
            startLine: f.line,
            startColumn: f.column,
            endLine: f.endLine,
            endColumn: f.endColumn,
          },
        },
      },
    ],
    partialFingerprints: { 'mistralGuard/v1': f.fingerprint },
    properties: jsonFinding(f),
  };
}

/**
 * A SARIF 2.1.0 log with one run. Paths are relative to the repository root (`%SRCROOT%`), as
 * GitHub code scanning expects; each result carries our fingerprint in `partialFingerprints`
 * so alerts follow a value across line moves.
 */
export function formatSarif(report: ScanReport): string {
  // A rule's severity is fixed by its detector, so any finding of the rule gives it.
  const severityOf = new Map(report.findings.map((f) => [f.rule, f.severity]));
  const ruleIds = [...severityOf.keys()].sort();
  const index = new Map(ruleIds.map((id, i) => [id, i]));
  const log = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'mistral-guard',
            semanticVersion: report.version,
            rules: ruleIds.map((id) => sarifRule(id, severityOf.get(id)!)),
          },
        },
        columnKind: 'utf16CodeUnits',
        results: report.findings.map((f) => sarifResult(f, index.get(f.rule)!)),
      },
    ],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}

const CSV_COLUMNS = [
  'rule',
  'category',
  'severity',
  'file',
  'line',
  'column',
  'endLine',
  'endColumn',
  'preview',
  'fingerprint',
  'source',
  'commit',
  'authorDate',
  'verification',
  'encoding',
] as const;

// A cell starting with one of these is run as a formula by spreadsheet programs (a lone `-`,
// the path of standard input, is not).
const FORMULA_START = /^(?:[=+@\t\r]|-.)/s;

function csvCell(value: unknown): string {
  let text = value === undefined ? '' : String(value);
  if (FORMULA_START.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV (RFC 4180, CRLF line ends) with a header row; cells that a spreadsheet would run as a formula are prefixed with `'`. */
export function formatCsv(report: ScanReport): string {
  const rows = [CSV_COLUMNS.join(',')];
  for (const f of report.findings) {
    rows.push(CSV_COLUMNS.map((c) => csvCell(f[c])).join(','));
  }
  return `${rows.join('\r\n')}\r\n`;
}
