// Gateway overhead: requests/s and latency of a non-streamed chat with a 2 KB prompt, in one run,
// against (a) the loopback upstream directly, (b) a bare undici pass-through proxy, (c) the
// gateway, with its content guard on (the default) and off. Targets: (c) reaches at least 60% of
// (b); the guard costs at most 15% of the gateway's throughput.
//
//   npm run bench            (BENCH_SECONDS, BENCH_CONNECTIONS to change the load)
import {
  chatBody,
  type Figures,
  load,
  report,
  startBaselines,
  startGatewayVariant,
} from './harness.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);

const baselines = await startBaselines();
try {
  // Limits are counted (in memory) but high enough never to refuse the load.
  const limits =
    '    limits: { rpm: 1000000000, tpm: 1000000000000, concurrency: 100000, dailyTokens: null }\n';
  const gateway = await startGatewayVariant(baselines, {
    yaml: `profiles:\n  development:\n${limits}`,
  });
  const unguarded = await startGatewayVariant(baselines, {
    yaml: `profiles:\n  development:\n${limits}    guard:\n      enabled: false\n`,
  });
  const body = chatBody();
  const path = '/v1/chat/completions';
  const common = { path, body, connections, durationSec: seconds };
  const rows: Figures[] = [];
  rows.push(
    await load('direct', { ...common, url: baselines.upstream.url, key: baselines.upstreamKey }),
  );
  rows.push(
    await load('passthrough', {
      ...common,
      url: baselines.passthrough.url,
      key: baselines.upstreamKey,
    }),
  );
  rows.push(
    await load('gateway', {
      ...common,
      url: gateway.child.url,
      key: gateway.key,
      pid: gateway.child.proc.pid,
    }),
  );
  rows.push(
    await load('gateway, guard off', {
      ...common,
      url: unguarded.child.url,
      key: unguarded.key,
      pid: unguarded.child.proc.pid,
    }),
  );
  await report('gateway overhead, 2 KB chat', rows, [
    ['gateway / passthrough', 'gateway', 'passthrough'],
    ['guard on / guard off', 'gateway', 'gateway, guard off'],
    ['passthrough / direct', 'passthrough', 'direct'],
    ['gateway / direct', 'gateway', 'direct'],
  ]);
} finally {
  for (const child of baselines.children.reverse()) await child.stop();
}
