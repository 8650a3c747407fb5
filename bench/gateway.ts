// Gateway overhead: requests/s and latency of a non-streamed chat with a 2 KB prompt, in one run,
// against (a) the loopback upstream directly, (b) a bare undici pass-through proxy, (c) the
// gateway. Target: (c) reaches at least 60% of (b).
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
  const gateway = await startGatewayVariant(baselines);
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
  await report('gateway overhead, 2 KB chat', rows, [
    ['gateway / passthrough', 'gateway', 'passthrough'],
    ['passthrough / direct', 'passthrough', 'direct'],
    ['gateway / direct', 'gateway', 'direct'],
  ]);
} finally {
  for (const child of baselines.children.reverse()) await child.stop();
}
