/**
 * A child process for the durability test: records events from several concurrent writers and
 * prints each request id only after its `record()` promise resolved, until it is killed.
 * Usage: node --import tsx test/audit/record-child.ts <dataDir>
 */
import { openAuditLog } from '../../src/audit/sqlite-sink.js';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: record-child.ts <dataDir>');
const audit = await openAuditLog(dataDir);
let next = 0;

async function writer(): Promise<never> {
  for (;;) {
    const requestId = `child-${next++}`;
    await audit.record({
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
