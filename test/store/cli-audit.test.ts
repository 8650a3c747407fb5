import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { toAuditRecord } from '../../src/audit/event.js';
import { hashVirtualKey } from '../../src/keys/format.js';
import { openStores } from '../../src/store/open.js';
import { sampleEvent } from '../audit/helpers.js';
import { BACKENDS, type BackendContext } from './backends.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

async function cli(ctx: BackendContext, ...args: string[]) {
  const child = spawn(
    process.execPath,
    ['--import', TSX, MAIN, ...args, '--data-dir', ctx.dataDir],
    {
      cwd: ctx.dataDir,
      env: { PATH: process.env.PATH, HOME: ctx.dataDir, ...ctx.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const [code] = await once(child, 'exit');
  return { code: code as number | null, stdout, stderr };
}

async function seed(ctx: BackendContext): Promise<void> {
  const stores = await openStores(ctx.config, { prune: false, watchKeys: false });
  const day = new Date('2026-02-01T10:00:00.000Z');
  await stores.audit!.append(toAuditRecord(sampleEvent('a1', { keyId: 'key_A' }), day));
  await stores.audit!.append(
    toAuditRecord(
      sampleEvent('a2', {
        keyId: 'key_A',
        success: false,
        status: 429,
        errorCode: 'rate_limited',
        userAgent: '=HYPERLINK("http://evil")',
      }),
      new Date(day.getTime() + 1000),
    ),
  );
  await stores.close();
}

for (const backend of BACKENDS) {
  describe(`audit CLI on ${backend.name}`, { skip: backend.skip }, () => {
    test('keys commands use the store and record who created, updated, revoked', async (t) => {
      const ctx = await backend.setup(t);
      const created = await cli(ctx, 'keys', 'create', '--name', 'ops', '--json');
      assert.equal(created.code, 0, created.stderr);
      const { id, key } = JSON.parse(created.stdout) as { id: string; key: string };
      assert.equal((await cli(ctx, 'keys', 'update', id, '--rpm', '5')).code, 0);
      assert.equal((await cli(ctx, 'keys', 'revoke', id)).code, 0);
      const listed = await cli(ctx, 'keys', 'list', '--all', '--json');
      assert.deepEqual(
        (JSON.parse(listed.stdout) as Array<{ id: string }>).map((k) => k.id),
        [id],
      );

      const query = await cli(ctx, 'audit', 'query', '--key', id, '--json');
      assert.equal(query.code, 0, query.stderr);
      const events = query.stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.deepEqual(
        events.map((e) => e.action),
        ['admin.key.create', 'admin.key.update', 'admin.key.revoke'],
      );
      assert.equal(events[0]?.method, 'CLI');
      assert.equal(events[0]?.keyName, 'ops');
      assert.match(String(events[0]?.userAgent), /^mistral-guard-cli \(.+@.+\)$/);
      assert.ok(!query.stdout.includes(key));
      assert.ok(!query.stdout.includes(hashVirtualKey(key)));
      const verified = await cli(ctx, 'audit', 'verify');
      assert.equal(verified.code, 0, verified.stdout);
    });

    test('audit verify exits 0 when intact, 1 naming the event once a row is edited', async (t) => {
      const ctx = await backend.setup(t);
      await seed(ctx);
      const intact = await cli(ctx, 'audit', 'verify');
      assert.equal(intact.code, 0, intact.stderr);
      assert.match(intact.stdout, /OK: every chain is intact/);
      assert.match(intact.stdout, /checkpoints are unsigned/);

      await ctx.sql('audit', 'UPDATE audit_events SET status = 200 WHERE seq = 2');
      const broken = await cli(ctx, 'audit', 'verify');
      assert.equal(broken.code, 1);
      assert.match(broken.stdout, /BROKEN: chain \S+ at seq 2 \(event [0-9a-f-]{36}\): .*changed/);
      const json = JSON.parse((await cli(ctx, 'audit', 'verify', '--json')).stdout);
      assert.equal(json.ok, false);
      assert.equal(json.problems[0].kind, 'edited');
    });

    test('query, export and stats print tables, JSON lines and safe CSV', async (t) => {
      const ctx = await backend.setup(t);
      await seed(ctx);
      const table = await cli(ctx, 'audit', 'query', '--status', 'error');
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^TIME \(UTC\)\s+STATUS/);
      assert.match(table.stdout, /429\s+chat\.complete/);
      assert.doesNotMatch(table.stdout, /\b200\b/);

      const csv = await cli(ctx, 'audit', 'export', '--format', 'csv', '--since', '2026-02-01');
      const lines = csv.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 3);
      assert.match(lines[0]!, /^time,id,chain_id,seq,request_id,action/);
      // A cell a spreadsheet would run as a formula is defused.
      assert.ok(lines[2]!.includes(`"'=HYPERLINK(""http://evil"")"`));

      const jsonl = await cli(ctx, 'audit', 'export', '--until', '2026-02-01T10:00:01');
      assert.deepEqual(
        jsonl.stdout
          .trimEnd()
          .split('\n')
          .map((l) => JSON.parse(l).requestId),
        ['a1'],
      );

      const stats = JSON.parse((await cli(ctx, 'audit', 'stats', '--json')).stdout);
      assert.deepEqual(stats, [
        {
          day: '2026-02-01',
          keyId: 'key_A',
          model: 'mistral-small-latest',
          requests: 2,
          promptTokens: 20,
          completionTokens: 10,
          totalTokens: 30,
          errors: 1,
          blocks: 0,
        },
      ]);
      const tail = await cli(ctx, 'audit', 'tail', '-n', '1', '--json');
      assert.equal(JSON.parse(tail.stdout).requestId, 'a2');
    });

    test('audit prune removes old events and leaves a trail that verifies', async (t) => {
      const ctx = await backend.setup(t);
      await seed(ctx);
      const pruned = await cli(ctx, 'audit', 'prune', '--days', '1');
      assert.equal(pruned.code, 0, pruned.stderr);
      assert.match(pruned.stdout, /^pruned 2 events older than /);
      assert.equal((await cli(ctx, 'audit', 'verify')).code, 0);
      const none = await cli(ctx, 'audit', 'prune');
      assert.equal(none.code, 2);
      assert.match(none.stderr, /no retention period/);
    });

    test('bad filter values are usage errors that name the flag, not the value', async (t) => {
      const ctx = await backend.setup(t);
      const since = await cli(ctx, 'audit', 'query', '--since', 'yesterday-secret');
      assert.equal(since.code, 2);
      assert.match(since.stderr, /--since must be a duration/);
      assert.ok(!since.stderr.includes('yesterday-secret'));
      const status = await cli(ctx, 'audit', 'stats', '--status', 'maybe');
      assert.equal(status.code, 2);
      assert.match(status.stderr, /--status must be ok or error/);
    });
  });
}
