// The leak scanner against secretlint, in one run: both scan the same generated working tree
// (wall time, CPU time, recall of the planted keys), then `scan --history` reads the whole
// generated history and two shorter prefixes of it, to show throughput and that the scanner's
// peak memory stays flat as the history grows. Wall times on a shared machine move with the
// load; CPU times (the process and every child it waited for, git included) move less.
// Run: npx tsc -p tsconfig.build.json && node --import tsx bench/scan.ts [--commits N] [--files N]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, ROOT } from '../test/support/processes.js';
import { buildScanFixture, type Fixture, KINDS, type Kind } from './scan-fixture.js';

const SECRETLINT = join(ROOT, 'node_modules/secretlint/bin/secretlint.js');
const SECRETLINT_RULES = JSON.stringify({
  rules: [{ id: '@secretlint/secretlint-rule-preset-recommend' }],
});
// Loaded into each measured Node process: prints its peak resident set size as it exits.
const RSS_PROBE =
  'data:text/javascript,process.on("exit",()=>process.stderr.write("\\nmaxrss="+process.resourceUsage().maxRSS+"\\n"))';
const CLOCK_TICKS = 100;

interface Measured {
  wallS: number;
  cpuS: number;
  rssMb: number;
  stdout: string;
}

/** Where one tool says a secret starts: file, 1-based line and column, and its rule. */
interface Hit {
  file: string;
  line: number;
  column: number;
  rule: string;
  commit?: string;
}

// CPU time of the children this process has waited for (and theirs), from /proc.
function childCpuS(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}

function measure(args: string[], cwd: string): Measured {
  const cpuBefore = childCpuS();
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--import', RSS_PROBE, ...args], {
    cwd,
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    env: { PATH: process.env.PATH, HOME: cwd, NO_COLOR: '1' },
  });
  const wallS = (performance.now() - started) / 1000;
  const rss = /maxrss=(\d+)/.exec(r.stderr);
  if (r.status !== 0 && r.status !== 1) throw new Error(`${args[0]} failed: ${r.stderr}`);
  return {
    wallS,
    cpuS: childCpuS() - cpuBefore,
    rssMb: rss ? Number(rss[1]) / 1024 : Number.NaN,
    stdout: r.stdout,
  };
}

function best(runs: number, run: () => Measured): Measured {
  let top: Measured | null = null;
  for (let i = 0; i < runs; i++) {
    const m = run();
    if (!top || m.wallS < top.wallS) top = m;
  }
  return top!;
}

function ours(stdout: string): Hit[] {
  return (JSON.parse(stdout) as { findings: Hit[] }).findings;
}

// secretlint reports 1-based lines and 0-based columns, and absolute paths.
function theirs(stdout: string, dir: string): Hit[] {
  const files = JSON.parse(stdout) as Array<{
    filePath: string;
    messages: Array<{ ruleId: string; loc: { start: { line: number; column: number } } }>;
  }>;
  return files.flatMap((f) =>
    f.messages.map((m) => ({
      file: f.filePath.slice(dir.length + 1),
      line: m.loc.start.line,
      column: m.loc.start.column + 1,
      rule: m.ruleId.replace('@secretlint/secretlint-rule-', ''),
    })),
  );
}

interface Expected {
  kind: Kind;
  file: string;
  line: number;
  column: number;
  commit?: string;
}

/**
 * Recall per kind of key. A planted key counts as found when a finding starts in its file on its
 * line; `exact` also asks for its column and (in history) its commit. A key found under another
 * rule than its own (a generic one) still counts, and is counted apart as `misnamed`.
 */
function recall(expected: Expected[], hits: Hit[], exact: boolean) {
  const byKind = new Map<Kind, { found: number; total: number }>(
    KINDS.map((k) => [k, { found: 0, total: 0 }]),
  );
  const used = new Set<Hit>();
  let misnamed = 0;
  for (const e of expected) {
    const hit = hits.find(
      (h) =>
        h.file === e.file &&
        h.line === e.line &&
        (!exact || (h.column === e.column && h.commit === e.commit)),
    );
    const k = byKind.get(e.kind)!;
    k.total++;
    if (!hit) continue;
    k.found++;
    used.add(hit);
    if (exact && hit.rule !== e.kind) misnamed++;
  }
  const found = [...byKind.values()].reduce((n, k) => n + k.found, 0);
  return { byKind, found, total: expected.length, misnamed, other: hits.length - used.size };
}

const row = (cells: Array<string | number>, widths: number[]) =>
  `${cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join('  ')}\n`;
const out = (text: string) => process.stdout.write(text);

function treeBench(fixture: Fixture): void {
  const mine = best(3, () => measure([CLI, 'scan', '--format', 'json'], fixture.dir));
  // secretlint exits before a large report has drained into a pipe; a file gets all of it.
  const report = join(fixture.dir, '..', 'secretlint.json');
  const sl = measure(
    [
      SECRETLINT,
      '**/*',
      '--format',
      'json',
      '--output',
      report,
      '--secretlintrcJSON',
      SECRETLINT_RULES,
    ],
    fixture.dir,
  );
  sl.stdout = readFileSync(report, 'utf8');
  const expected = fixture.treePlants.map((p) => ({
    kind: p.kind,
    file: p.file,
    line: p.headLine,
    column: p.headColumn,
  }));
  const a = recall(expected, ours(mine.stdout), true);
  const b = recall(expected, theirs(sl.stdout, fixture.dir), false);
  const mb = fixture.treeBytes / 1e6;
  const w = [22, 8, 8, 8, 8, 10, 9, 7];
  out(`\nWorking tree: ${fixture.files} files, ${mb.toFixed(1)} MB, ${expected.length} keys\n`);
  out(row(['tool', 'wall s', 'cpu s', 'MB/s', 'RSS MB', 'recall', 'generic', 'other'], w));
  for (const [name, m, r] of [
    ['mistral-guard scan', mine, a],
    ['secretlint', sl, b],
  ] as const) {
    out(
      row(
        [
          name,
          m.wallS.toFixed(2),
          m.cpuS.toFixed(2),
          (mb / m.wallS).toFixed(1),
          m.rssMb.toFixed(0),
          `${r.found}/${r.total}`,
          r === b ? '-' : r.misnamed,
          r.other,
        ],
        w,
      ),
    );
  }
  out(
    `mistral-guard is ${(sl.wallS / mine.wallS).toFixed(1)}x faster (wall), ${(sl.cpuS / mine.cpuS).toFixed(1)}x (cpu)\n`,
  );
  out('generic: found under a generic rule; other: findings at no planted key\n');
  out('\nRecall by kind (mistral-guard: exact line and column; secretlint: line)\n');
  for (const kind of KINDS) {
    const x = a.byKind.get(kind)!;
    const y = b.byKind.get(kind)!;
    out(row([kind, `${x.found}/${x.total}`, `${y.found}/${y.total}`], [22, 14, 10]));
  }
}

function historyBench(fixture: Fixture, scratch: string): void {
  const w = [10, 8, 8, 10, 8, 10, 9];
  out('\nHistory: mistral-guard scan --history (exact file, line, column and commit)\n');
  out(row(['commits', 'wall s', 'cpu s', 'commits/s', 'RSS MB', 'recall', 'generic'], w));
  const idOf = (mark: number) => fixture.commitIds.get(mark)!;
  for (const [at, commit] of fixture.checkpoints) {
    const dir = join(scratch, `at-${at}`);
    spawnSync('git', ['worktree', 'add', '-q', '--no-checkout', '--detach', dir, commit], {
      cwd: fixture.dir,
    });
    const count = Number(
      spawnSync('git', ['rev-list', '--count', 'HEAD'], { cwd: dir, encoding: 'utf8' }).stdout,
    );
    const m = measure([CLI, 'scan', '--history', '--format', 'json'], dir);
    const reachable = new Set(
      spawnSync('git', ['rev-list', 'HEAD'], { cwd: dir, encoding: 'utf8' }).stdout.split('\n'),
    );
    const expected = fixture.plants
      .filter((p) => reachable.has(idOf(p.mark)))
      .map((p) => ({
        kind: p.kind,
        file: p.file,
        line: p.line,
        column: p.column,
        commit: idOf(p.mark),
      }));
    const r = recall(expected, ours(m.stdout), true);
    out(
      row(
        [
          count,
          m.wallS.toFixed(2),
          m.cpuS.toFixed(2),
          (count / m.wallS).toFixed(0),
          m.rssMb.toFixed(0),
          `${r.found}/${r.total}`,
          r.misnamed,
        ],
        w,
      ),
    );
  }
  const removed = fixture.plants.filter((p) => !p.alive).length;
  out(`(${removed} of the keys were removed before the last commit or sit in deleted files)\n`);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      commits: { type: 'string', default: '5000' },
      files: { type: 'string', default: '1500' },
    },
  });
  if (!existsSync(CLI)) throw new Error('build first: npx tsc -p tsconfig.build.json');
  if (!existsSync(SECRETLINT)) throw new Error('install secretlint: npm install (devDependencies)');
  const commits = Number(values.commits);
  const scratch = mkdtempSync(join(tmpdir(), 'mg-scan-bench-'));
  try {
    const started = performance.now();
    const fixture = buildScanFixture(join(scratch, 'repo'), {
      commits,
      files: Number(values.files),
      checkpoints: [Math.round(commits / 5), Math.round(commits / 2), commits],
    });
    out(
      `Fixture: ${fixture.commits} commits, ${fixture.plants.length} keys planted (${fixture.treePlants.length} still in the tree), built in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
    treeBench(fixture);
    historyBench(fixture, scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main();
