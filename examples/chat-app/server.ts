/**
 * Runs the example chat app: `node --import tsx examples/chat-app/server.ts`.
 *
 * With MISTRAL_BASE_URL and MISTRAL_API_KEY set, it talks to that API. Without them it starts
 * the loopback Mistral-compatible server the tests use, so it runs offline. PORT picks the port
 * (default 3000; 0 for any free one). It prints one JSON line with its URL, then one line per
 * audit event.
 *
 *   curl -s localhost:3000/api/chat -H 'content-type: application/json' -H 'x-user-id: ada' \
 *     -d '{"messages":[{"role":"user","content":"[[echo]] my card is 4111 1111 1111 1111"}]}'
 */
import { randomBytes } from 'node:crypto';
import { createGuardedClient, loadConfig } from '../../src/index.js';
import { type MockMistral, startMockMistral } from '../../test/support/mock-mistral.js';
import { buildChatApp } from './app.js';

const env: Record<string, string | undefined> = { ...process.env };
let mock: MockMistral | null = null;
if (!env.MISTRAL_BASE_URL) {
  const key = randomBytes(24).toString('base64url').slice(0, 32);
  mock = await startMockMistral({ validKeys: [key] });
  env.MISTRAL_BASE_URL = mock.url;
  env.MISTRAL_API_KEY = key;
}

const config = await loadConfig({ env, requireUpstreamKey: true });
const client = await createGuardedClient({
  config,
  // Audit events as JSON lines; use `openAuditLog(config.dataDir)` to keep a queryable trail.
  audit: {
    async record(event) {
      process.stdout.write(`${JSON.stringify({ audit: event })}\n`);
    },
  },
});
const app = await buildChatApp({ client });
const url = await app.listen({ host: '127.0.0.1', port: Number(env.PORT ?? 3000) });
process.stdout.write(`${JSON.stringify({ msg: 'listening', url, offline: mock !== null })}\n`);

async function stop(): Promise<void> {
  await app.close();
  await client.close();
  await mock?.close();
}
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
