import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { verifyTrail } from '../../src/audit/verify.js';
import { openAuditTrail } from '../../src/store/open.js';
import { BACKENDS } from './backends.js';

const CHILD = fileURLToPath(new URL('./record-child.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

for (const backend of BACKENDS) {
  describe(`durability on ${backend.name}`, { skip: backend.skip }, () => {
    test('every event whose record() resolved survives kill -9; the trail verifies', async (t) => {
      const ctx = await backend.setup(t);
      const child = spawn(process.execPath, ['--import', TSX, CHILD, ctx.dataDir], {
        env: { PATH: process.env.PATH, ...ctx.env },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const acknowledged: string[] = [];
      const lines = createInterface({ input: child.stdout });
      const exited = once(child, 'exit');
      for await (const line of lines) {
        acknowledged.push(line);
        // Killed mid-stream, with batches in flight: the moment a crash would strike.
        if (acknowledged.length === 2000) child.kill('SIGKILL');
      }
      const [, signal] = await exited;
      assert.equal(signal, 'SIGKILL');
      assert.ok(acknowledged.length >= 2000);

      const trail = await openAuditTrail(ctx.config);
      t.after(() => trail.close());
      const stored = new Set<string>();
      for await (const event of trail.events({})) stored.add(event.requestId);
      const lost = acknowledged.filter((id) => !stored.has(id));
      assert.deepEqual(lost, []);
      const report = await verifyTrail(trail);
      assert.equal(report.ok, true, JSON.stringify(report.problems));
    });
  });
}
