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
}

/** Loads one target: a short warm-up, then the measured run. */
export async function load(name: string, o: LoadOptions): Promise<Figures> {
  const request = {
    url: o.url + o.path,
    method: 'POST' as const,
    body: o.body,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${o.key}` },
    connections: o.connections,
  };
  await autocannon({ ...request, duration: 2 });
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
  children: Child[];
}

/** Starts the loopback upstream and the bare undici pass-through proxy. */
export async function startBaselines(): Promise<Baselines> {
  const upstreamKey = canaryUpstreamKey();
  const upstream = await spawnServer(process.execPath, [
    '--import',
    TSX,
    join(ROOT, 'test/support/mock-mistral-cli.ts'),
    '--valid-key',
    upstreamKey,
  ]);
  const passthrough = await spawnServer(process.execPath, [
    '--import',
    TSX,
    join(ROOT, 'bench/passthrough-proxy.ts'),
    '--upstream',
    upstream.url,
  ]);
  return { upstreamKey, upstream, passthrough, children: [upstream, passthrough] };
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

/**
 * Loads each started gateway in turn with the same 2 KB chat, one row per variant, named by
 * its key in `variants`.
 */
export async function loadVariants(
  variants: Record<string, { child: Child; key: string }>,
  options: { connections: number; durationSec: number; body?: string },
): Promise<Figures[]> {
  const rows: Figures[] = [];
  for (const [name, variant] of Object.entries(variants)) {
    rows.push(
      await load(name, {
        path: '/v1/chat/completions',
        body: options.body ?? chatBody(),
        connections: options.connections,
        durationSec: options.durationSec,
        url: variant.child.url,
        key: variant.key,
        pid: variant.child.proc.pid,
      }),
    );
  }
  return rows;
}

/** Prints a table and the ratios, and keeps the figures under bench/results/. */
export async function report(
  title: string,
  rows: Figures[],
  ratios: Array<[string, string, string]>,
) {
  const out = process.stdout;
  out.write(`\n${title}\n`);
  out.write(
    `${'target'.padEnd(28)}${'req/s'.padStart(10)}${'p50 ms'.padStart(10)}${'p99 ms'.padStart(10)}${'errors'.padStart(8)}${'non2xx'.padStart(8)}${'cpu us/req'.padStart(12)}\n`,
  );
  for (const r of rows) {
    out.write(
      `${r.name.padEnd(28)}${String(r.requestsPerSec).padStart(10)}${String(r.p50Ms).padStart(10)}${String(r.p99Ms).padStart(10)}${String(r.errors).padStart(8)}${String(r.non2xx).padStart(8)}${String(r.cpuUsPerRequest ?? '-').padStart(12)}\n`,
    );
    if (r.non2xx > 0) out.write(`  statuses: ${JSON.stringify(r.statuses)}\n`);
  }
  const byName = new Map(rows.map((r) => [r.name, r]));
  const computed: Record<string, number> = {};
  for (const [label, a, b] of ratios) {
    const ra = byName.get(a);
    const rb = byName.get(b);
    if (!ra || !rb || rb.requestsPerSec === 0) continue;
    const value = Math.round((ra.requestsPerSec / rb.requestsPerSec) * 1000) / 1000;
    computed[label] = value;
    out.write(`${label}: ${value}\n`);
  }
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, 'bench/results', `${title.replace(/\W+/g, '-').toLowerCase()}.json`);
  await writeFile(
    file,
    `${JSON.stringify({ title, at: new Date().toISOString(), rows, ratios: computed }, null, 2)}\n`,
  );
}
