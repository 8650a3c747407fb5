// Shared pieces of the benchmarks: start the servers under test as separate processes, load them
// with autocannon from this process, and report figures and ratios from one run.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { canaryUpstreamKey } from '../test/support/canary.js';
import {
  type Child,
  ROOT,
  runCli,
  spawnServer,
  startGatewayProcess,
  TSX,
} from '../test/support/processes.js';

/** One measured target. */
export interface Figures {
  name: string;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /** CPU time the server under test spent per request, all its threads, in microseconds. */
  cpuUsPerRequest: number | null;
  /** Answers per status code, so a run full of refusals is seen as such. */
  statuses: Record<string, number>;
}

/** CPU time (user + system) a process has used so far, in milliseconds, from /proc. */
function cpuMs(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / 100;
  } catch {
    return null;
  }
}

export interface LoadOptions {
  url: string;
  path: string;
  body: string;
  key: string;
  connections: number;
  durationSec: number;
  /** The process serving `url`, to charge its CPU time to the figures. */
  pid?: number | undefined;
  /** Seconds of unmeasured load first; default 2. */
  warmupSec?: number;
}

/** Loads one target: a warm-up (2 s unless told), then the measured run. */
export async function load(name: string, o: LoadOptions): Promise<Figures> {
  const request = {
    url: o.url + o.path,
    method: 'POST' as const,
    body: o.body,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${o.key}` },
    connections: o.connections,
  };
  const warmup = o.warmupSec ?? 2;
  if (warmup > 0) await autocannon({ ...request, duration: warmup });
  const cpuBefore = cpuMs(o.pid);
  const r = await autocannon({ ...request, duration: o.durationSec });
  const cpuAfter = cpuMs(o.pid);
  const cpu =
    cpuBefore !== null && cpuAfter !== null && r.requests.total > 0
      ? Math.round(((cpuAfter - cpuBefore) * 1000) / r.requests.total)
      : null;
  return {
    name,
    requestsPerSec: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    cpuUsPerRequest: cpu,
    statuses: Object.fromEntries(
      Object.entries(r.statusCodeStats ?? {}).map(([code, stat]) => [code, stat?.count ?? 0]),
    ) as Record<string, number>,
  };
}

/** A 2 KB chat request, the size the gateway targets are stated for. */
export function chatBody(promptBytes = 2048): string {
  const sentence =
    'Please summarise the quarterly report for the finance team in three bullet points. ';
  const prompt = sentence.repeat(Math.ceil(promptBytes / sentence.length)).slice(0, promptBytes);
  return JSON.stringify({
    model: 'mistral-small-latest',
    messages: [{ role: 'user', content: prompt }],
    max_tokens: 256,
  });
}

/** The servers every gateway benchmark compares: the upstream itself and a bare proxy. */
export interface Baselines {
  upstreamKey: string;
  upstream: Child;
  passthrough: Child;
  /** A proxy that parses and re-serialises the request and the answer, and checks nothing. */
  parsing?: Child;
  children: Child[];
}

/**
 * Starts the loopback upstream and the bare undici pass-through proxy, and the parsing proxy
 * when asked.
 */
export async function startBaselines(options: { parsing?: boolean } = {}): Promise<Baselines> {
  const upstreamKey = canaryUpstreamKey();
  const upstream = await spawnServer(process.execPath, [
    '--import',
    TSX,
    join(ROOT, 'test/support/mock-mistral-cli.ts'),
    '--valid-key',
    upstreamKey,
  ]);
  const proxy = (script: string) =>
    spawnServer(process.execPath, [
      '--import',
      TSX,
      join(ROOT, script),
      '--upstream',
      upstream.url,
    ]);
  const passthrough = await proxy('bench/passthrough-proxy.ts');
  const children = [upstream, passthrough];
  if (!options.parsing) return { upstreamKey, upstream, passthrough, children };
  const parsing = await proxy('bench/parsing-proxy.ts');
  children.push(parsing);
  return { upstreamKey, upstream, passthrough, parsing, children };
}

/** Starts a gateway process with its own data directory, config file and virtual key. */
export async function startGatewayVariant(
  baselines: Baselines,
  options: { yaml?: string; env?: Record<string, string> } = {},
): Promise<{ child: Child; key: string }> {
  const cwd = await mkdtemp(join(tmpdir(), 'mg-bench-'));
  const dataDir = join(cwd, 'data');
  // autocannon ignores `Connection: close`, so the keep-alive cap (which Node enforces with 503s
  // on a connection that goes on) is lifted for the load generator's long-lived connections.
  const yaml = `server: { maxRequestsPerSocket: 1000000000 }\n${options.yaml ?? ''}`;
  await writeFile(join(cwd, 'mistral-guard.yaml'), yaml);
  const created = await runCli(
    ['keys', 'create', '--name', 'bench', '--json', '--data-dir', dataDir],
    {
      cwd,
    },
  );
  if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
  const key = (JSON.parse(created.stdout) as { key: string }).key;
  const child = await startGatewayProcess({
    dataDir,
    upstreamUrl: baselines.upstream.url,
    cwd,
    env: {
      MISTRAL_API_KEY: baselines.upstreamKey,
      ...options.env,
    },
  });
  baselines.children.push(child);
  return { child, key };
}

/** One server to load: where it listens, the key it takes, and its process for CPU figures. */
export interface Target {
  name: string;
  url: string;
  key: string;
  pid?: number | undefined;
}

/** The targets of a gateway variant map (name -> started variant). */
export function variantTargets(variants: Record<string, { child: Child; key: string }>): Target[] {
  return Object.entries(variants).map(([name, v]) => ({
    name,
    url: v.child.url,
    key: v.key,
    pid: v.child.proc.pid,
  }));
}

/** Figures of every target in every round, in the order they were taken. */
export interface Measured {
  rounds: Figures[][];
}

/**
 * Loads the targets in turn, round after round, with the same 2 KB chat. On a shared or virtual
 * machine the speed of everything drifts by tens of percent within a minute; interleaving short
 * runs and comparing targets within each round (paired ratios) keeps that drift out of the
 * comparison. The first round is preceded by a longer warm-up of each target.
 */
export async function measure(
  targets: Target[],
  options: { connections: number; durationSec: number; rounds: number; body?: string },
): Promise<Measured> {
  const body = options.body ?? chatBody();
  const common = { path: '/v1/chat/completions', body, connections: options.connections };
  for (const t of targets) await load(t.name, { ...common, ...t, durationSec: 3, warmupSec: 2 });
  const rounds: Figures[][] = [];
  for (let i = 0; i < options.rounds; i++) {
    const round: Figures[] = [];
    for (const t of targets) {
      round.push(
        await load(t.name, { ...common, ...t, durationSec: options.durationSec, warmupSec: 0 }),
      );
    }
    rounds.push(round);
  }
  return { rounds };
}

/** The usual load settings of a benchmark, from BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS. */
export function loadSettings() {
  return {
    durationSec: Number(process.env.BENCH_SECONDS ?? 4),
    rounds: Number(process.env.BENCH_ROUNDS ?? 5),
    connections: Number(process.env.BENCH_CONNECTIONS ?? 32),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Prints, per target, the median of each figure over the rounds and the range of its
 * throughput; per ratio, the median of the ratios taken within each round and their range.
 * Keeps everything, rounds included, under bench/results/.
 */
export async function report(
  title: string,
  measured: Measured,
  ratios: Array<[string, string, string]>,
) {
  const out = process.stdout;
  const names = measured.rounds[0]?.map((f) => f.name) ?? [];
  const of = (name: string) => measured.rounds.map((round) => round.find((f) => f.name === name)!);
  out.write(`\n${title} (${measured.rounds.length} rounds, medians)\n`);
  out.write(
    `${'target'.padEnd(24)}${'req/s'.padStart(8)}${'range'.padStart(14)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}${'errors'.padStart(8)}${'non2xx'.padStart(8)}${'cpu us/req'.padStart(12)}\n`,
  );
  const rows = names.map((name) => {
    const figures = of(name);
    const rps = figures.map((f) => f.requestsPerSec);
    const cpu = figures.map((f) => f.cpuUsPerRequest).filter((c): c is number => c !== null);
    const statuses: Record<string, number> = {};
    for (const f of figures) {
      for (const [code, n] of Object.entries(f.statuses))
        statuses[code] = (statuses[code] ?? 0) + n;
    }
    return {
      name,
      requestsPerSec: Math.round(median(rps)),
      range: [Math.min(...rps), Math.max(...rps)],
      p50Ms: median(figures.map((f) => f.p50Ms)),
      p99Ms: median(figures.map((f) => f.p99Ms)),
      errors: figures.reduce((a, f) => a + f.errors, 0),
      non2xx: figures.reduce((a, f) => a + f.non2xx, 0),
      cpuUsPerRequest: cpu.length ? Math.round(median(cpu)) : null,
      statuses,
    };
  });
  for (const r of rows) {
    out.write(
      `${r.name.padEnd(24)}${String(r.requestsPerSec).padStart(8)}${`${r.range[0]}-${r.range[1]}`.padStart(14)}${String(r.p50Ms).padStart(8)}${String(r.p99Ms).padStart(8)}${String(r.errors).padStart(8)}${String(r.non2xx).padStart(8)}${String(r.cpuUsPerRequest ?? '-').padStart(12)}\n`,
    );
    if (r.non2xx > 0) out.write(`  statuses: ${JSON.stringify(r.statuses)}\n`);
  }
  const computed: Record<string, { median: number; min: number; max: number }> = {};
  for (const [label, a, b] of ratios) {
    const paired = measured.rounds
      .map((round) => {
        const ra = round.find((f) => f.name === a);
        const rb = round.find((f) => f.name === b);
        return ra && rb && rb.requestsPerSec > 0 ? ra.requestsPerSec / rb.requestsPerSec : null;
      })
      .filter((v): v is number => v !== null);
    if (paired.length === 0) continue;
    const round3 = (v: number) => Math.round(v * 1000) / 1000;
    computed[label] = {
      median: round3(median(paired)),
      min: round3(Math.min(...paired)),
      max: round3(Math.max(...paired)),
    };
    const c = computed[label];
    out.write(`${label}: ${c.median} (rounds ${c.min}-${c.max})\n`);
  }
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, 'bench/results', `${title.replace(/\W+/g, '-').toLowerCase()}.json`);
  await writeFile(
    file,
    `${JSON.stringify({ title, at: new Date().toISOString(), rows, ratios: computed, rounds: measured.rounds }, null, 2)}\n`,
  );
}
