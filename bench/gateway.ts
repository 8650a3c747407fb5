// Gateway overhead: requests/s and latency of a non-streamed chat with a 2 KB prompt, in one run,
// against (a) the loopback upstream directly, (b) a bare undici pass-through proxy, (b') a proxy
// that only parses and re-serialises both bodies, (c) the gateway, with its content guard on (the
// default) and off. Targets: (c) reaches at least 60% of (b); the guard costs at most 15% of the
// gateway's throughput. (b') separates the price of reading content at all from the price of
// the gateway's checks.
//
//   npm run bench            (BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS to change the load)
import { loadSettings, measure, report, startBaselines, startGatewayVariant } from './harness.js';

const settings = loadSettings();

const baselines = await startBaselines({ parsing: true });
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
  const measured = await measure(
    [
      { name: 'direct', url: baselines.upstream.url, key: baselines.upstreamKey },
      {
        name: 'passthrough',
        url: baselines.passthrough.url,
        key: baselines.upstreamKey,
        pid: baselines.passthrough.proc.pid,
      },
      {
        name: 'parsing proxy',
        url: baselines.parsing!.url,
        key: baselines.upstreamKey,
        pid: baselines.parsing!.proc.pid,
      },
      { name: 'gateway', url: gateway.child.url, key: gateway.key, pid: gateway.child.proc.pid },
      {
        name: 'gateway, guard off',
        url: unguarded.child.url,
        key: unguarded.key,
        pid: unguarded.child.proc.pid,
      },
    ],
    settings,
  );
  await report('gateway overhead, 2 KB chat', measured, [
    ['gateway / passthrough', 'gateway', 'passthrough'],
    ['parsing proxy / passthrough', 'parsing proxy', 'passthrough'],
    ['gateway / parsing proxy', 'gateway', 'parsing proxy'],
    ['guard on / guard off', 'gateway', 'gateway, guard off'],
    ['passthrough / direct', 'passthrough', 'direct'],
    ['gateway / direct', 'gateway', 'direct'],
  ]);
} finally {
  for (const child of baselines.children.reverse()) await child.stop();
}
