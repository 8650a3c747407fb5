/**
 * A child process for the durability test: opens the configured stores (SQLite, or PostgreSQL
 * when MISTRAL_GUARD_DATABASE_URL is set) and records events from several concurrent writers,
 * printing each request id only after its `record()` resolved, until it is killed.
 * Usage: node --import tsx test/store/record-child.ts <dataDir>
 */
import { loadConfig } from '../../src/config/load.js';
import { openStores } from '../../src/store/open.js';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: record-child.ts <dataDir>');
const config = await loadConfig({ cwd: dataDir, env: process.env, flags: { dataDir } });
const { audit } = await openStores(config, { watchKeys: false, prune: false });
if (!audit) throw new Error('audit is disabled');
let next = 0;

async function writer(): Promise<never> {
  for (;;) {
    const requestId = `child-${next++}`;
    await audit!.record({
      requestId,
      action: 'chat.complete',
      method: 'POST',
      path: '/v1/chat/completions',
      status: 200,
      success: true,
      latencyMs: 1,
    });
    process.stdout.write(`${requestId}\n`);
  }
}

await Promise.all(Array.from({ length: 16 }, () => writer()));
