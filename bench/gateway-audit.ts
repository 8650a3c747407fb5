// Cost of the audit trail in the gateway: requests/s and latency of a non-streamed 2 KB chat, in
// one run, with audit off, into SQLite, and into PostgreSQL (127.0.0.1:5432, database `test`, a
// schema of its own dropped at the end). Target: either store keeps at least 90% of audit off.
//
//   node --import tsx bench/gateway-audit.ts   (BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS,
//                                              BENCH_DATABASE_URL to change the load or server)
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  loadSettings,
  measure,
  report,
  startBaselines,
  startGatewayVariant,
  variantTargets,
} from './harness.js';

const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
const schema = `mg_bench_${randomBytes(4).toString('hex')}`;

// Limits off in every variant, so the only difference between them is where events go.
const profile =
  'profiles:\n  development:\n    limits: { rpm: null, tpm: null, concurrency: null, dailyTokens: null }\n';

const baselines = await startBaselines();
try {
  const variants = {
    'audit off': await startGatewayVariant(baselines, {
      yaml: `audit: { enabled: false }\n${profile}`,
    }),
    'audit to sqlite': await startGatewayVariant(baselines, { yaml: profile }),
    'audit to postgres': await startGatewayVariant(baselines, {
      // The key is created through the same file, so it lands in PostgreSQL too.
      yaml: `store: { databaseUrl: '${databaseUrl}', schema: ${schema} }\n${profile}`,
    }),
  };
  const measured = await measure(variantTargets(variants), loadSettings());
  await report('audit in the gateway, 2 KB chat', measured, [
    ['sqlite / off', 'audit to sqlite', 'audit off'],
    ['postgres / off', 'audit to postgres', 'audit off'],
  ]);
} finally {
  for (const child of baselines.children.reverse()) await child.stop();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
}
