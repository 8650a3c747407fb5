import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { isAuditError } from '../../src/audit/errors.js';
import { type AuditEventInput, toAuditRecord } from '../../src/audit/event.js';
import { tailEvents } from '../../src/audit/reader.js';
import { openAuditLog } from '../../src/audit/sqlite-sink.js';
import { AUDIT_SQLITE_FILE } from '../../src/store/sqlite.js';
import { assertChain, memoryLogger, sampleEvent, tempDataDir } from './helpers.js';

/** Polls `check` every 20 ms until it is true, for at most 5 s. */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('condition not reached in 5 s');
}

const CHILD = fileURLToPath(new URL('./record-child.ts', import.meta.url));

test('a recorded event can be read back by tail with every field intact', async (t) => {
  const dir = tempDataDir(t);
  const audit = await openAuditLog(dir);
  const guard = { action: 'redact', findings: { email: 2 } };
  await audit.record(sampleEvent('req_roundtrip', { stream: true, guard, upstreamStatus: 200 }));
  await audit.close();

  const [event, ...rest] = tailEvents(dir, 10);
  assert.equal(rest.length, 0);
  assert.ok(event);
  assert.equal(event.seq, 1);
  assert.equal(event.requestId, 'req_roundtrip');
  assert.equal(event.keyName, 'ci');
  assert.equal(event.stream, true);
  assert.equal(event.success, true);
  assert.equal(event.totalTokens, 15);
  assert.equal(event.latencyMs, 42.5);
  assert.deepEqual(event.guard, guard);
  assertChain([event]);
});

test('2,000 concurrent records all resolve and are stored once each, in order, chained', async (t) => {
  const dir = tempDataDir(t);
  const audit = await openAuditLog(dir);
  const ids = Array.from({ length: 2000 }, (_, i) => `req_${i}`);
  await Promise.all(ids.map((id) => audit.record(sampleEvent(id))));
  assert.equal(audit.stats().committed, 2000);
  await audit.close();

  const events = tailEvents(dir, 5000);
  assert.equal(events.length, 2000);
  assert.deepEqual(
    events.map((e) => e.requestId),
    ids,
  );
  assertChain(events);
});

test('a second sink on the same file continues the same chain', async (t) => {
  const dir = tempDataDir(t);
  const a = await openAuditLog(dir);
  const b = await openAuditLog(dir);
  await Promise.all(
    Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).record(sampleEvent(`req_${i}`))),
  );
  await Promise.all([a.close(), b.close()]);
  const events = tailEvents(dir, 1000);
  assert.equal(events.length, 200);
  assertChain(events);
});

test('a full queue makes record wait, then admits events in arrival order', async (t) => {
  const dir = tempDataDir(t);
  const audit = await openAuditLog(dir, { batchSize: 4, maxQueue: 8 });
  const ids = Array.from({ length: 200 }, (_, i) => `req_${i}`);
  const all = Promise.all(ids.map((id) => audit.record(sampleEvent(id))));
  const stats = audit.stats();
  assert.ok(stats.queued + stats.writing <= 8);
  assert.equal(stats.waiting, 192);
  await all;
  await audit.close();
  assert.deepEqual(
    tailEvents(dir, 500).map((e) => e.requestId),
    ids,
  );
});

test('fields outside the allow-list never reach the database file', async (t) => {
  const dir = tempDataDir(t);
  const canary = 'sk-canary-4f1e9c2b7a6d';
  const audit = await openAuditLog(dir);
  const input = {
    ...sampleEvent('req_visible_marker'),
    path: `/v1/chat/completions?key=${canary}`,
    apiKey: canary,
    authorization: `Bearer ${canary}`,
    messages: [{ role: 'user', content: `my key is ${canary}` }],
  } as AuditEventInput;
  await audit.record(input);
  await audit.close();

  const bytes = readdirSync(dir)
    .filter((name) => name.startsWith(AUDIT_SQLITE_FILE))
    .map((name) => readFileSync(join(dir, name)));
  assert.ok(
    bytes.some((b) => b.includes('req_visible_marker')),
    'allowed fields are readable',
  );
  for (const b of bytes) assert.ok(!b.includes(canary), 'the canary was written to disk');
});

test('a commit that cannot get the write lock rejects its events with a code and logs', async (t) => {
  const dir = tempDataDir(t);
  const logger = memoryLogger();
  const audit = await openAuditLog(dir, { busyTimeoutMs: 50, logger });
  const other = new Database(join(dir, AUDIT_SQLITE_FILE));
  other.exec('BEGIN IMMEDIATE');
  await assert.rejects(audit.record(sampleEvent('req_locked')), (error) =>
    isAuditError(error, 'audit_write_failed'),
  );
  assert.equal(logger.lines[0]?.level, 'error');
  assert.deepEqual(logger.lines[0]?.fields, { code: 'SQLITE_BUSY', events: 1 });
  other.exec('ROLLBACK');
  other.close();

  await audit.record(sampleEvent('req_after'));
  await audit.close();
  assert.deepEqual(
    tailEvents(dir, 10).map((e) => e.requestId),
    ['req_after'],
  );
});

test('a crashed writer rejects only what it held, is restarted, and nothing is lost silently', async (t) => {
  const dir = tempDataDir(t);
  const logger = memoryLogger();
  const audit = await openAuditLog(dir, { logger, batchSize: 50 });
  const ids = Array.from({ length: 300 }, (_, i) => `req_${i}`);
  const outcomes = ids.map((id) => audit.record(sampleEvent(id)).then(() => 'ok' as const));
  await new Promise((resolve) => setImmediate(resolve));
  await (audit as unknown as { worker: Worker }).worker.terminate();
  const settled = await Promise.allSettled(outcomes);
  await audit.record(sampleEvent('req_after_restart'));
  await audit.close();

  const rejected = settled.filter((s) => s.status === 'rejected');
  for (const r of rejected) assert.ok(isAuditError(r.reason, 'audit_worker_crashed'));
  const stored = new Set(tailEvents(dir, 1000).map((e) => e.requestId));
  ids.forEach((id, i) => {
    if (settled[i]!.status === 'fulfilled') assert.ok(stored.has(id), `${id} resolved but missing`);
  });
  assert.ok(stored.has('req_after_restart'));
  assert.equal(audit.stats().restarts, 1);
  const crash = logger.lines.find((l) => l.message === 'audit writer exited unexpectedly');
  assert.ok(crash);
  assert.equal((crash.fields as { events: number }).events, rejected.length);
  t.diagnostic(`${rejected.length} of ${ids.length} rejected by the crash`);
});

test('a writer that cannot restart fails records fast until a later restart works', async (t) => {
  const dir = tempDataDir(t);
  const logger = memoryLogger();
  const audit = await openAuditLog(dir, { logger });
  await audit.record(sampleEvent('req_before'));
  const file = join(dir, AUDIT_SQLITE_FILE);
  const moved = readdirSync(dir).filter((name) => name.startsWith(AUDIT_SQLITE_FILE));
  for (const name of moved) renameSync(join(dir, name), join(dir, `${name}.away`));
  mkdirSync(file);
  await (audit as unknown as { worker: Worker }).worker.terminate();
  await until(() => logger.lines.some((l) => l.message === 'audit writer restart scheduled'));
  await assert.rejects(audit.record(sampleEvent('req_down')), (e) =>
    isAuditError(e, 'audit_unavailable'),
  );

  rmdirSync(file);
  for (const name of moved) renameSync(join(dir, `${name}.away`), join(dir, name));
  await until(() =>
    audit.record(sampleEvent('req_back')).then(
      () => true,
      () => false,
    ),
  );
  await audit.close();
  const events = tailEvents(dir, 10);
  assert.deepEqual(
    events.map((e) => e.requestId),
    ['req_before', 'req_back'],
  );
  assertChain(events);
});

test('record after close rejects with audit_closed', async (t) => {
  const audit = await openAuditLog(tempDataDir(t));
  await audit.close();
  await assert.rejects(audit.record(sampleEvent('late')), (e) => isAuditError(e, 'audit_closed'));
});

test('a writer that cannot open its database fails at startup', async (t) => {
  const dir = tempDataDir(t);
  // A directory where the database file should be: SQLite cannot open it.
  mkdirSync(join(dir, AUDIT_SQLITE_FILE));
  await assert.rejects(openAuditLog(dir), (e) => isAuditError(e, 'audit_unavailable'));
});

test('every event whose record() resolved survives kill -9 of the process', async (t) => {
  const dir = tempDataDir(t);
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const printed: string[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = once(child, 'exit');
  // readline yields complete lines only, so a line cut by the kill is never counted.
  for await (const line of createInterface({ input: child.stdout })) {
    printed.push(line);
    if (printed.length === 3000) child.kill('SIGKILL');
  }
  const [code, signal] = await exited;
  assert.equal(signal, 'SIGKILL', `child exited with ${code}: ${stderr}`);

  const events = tailEvents(dir, 1_000_000);
  const stored = new Set(events.map((e) => e.requestId));
  const missing = printed.filter((id) => !stored.has(id));
  assert.deepEqual(missing, []);
  assert.equal(stored.size, events.length, 'no event is stored twice');
  assertChain(events);
  t.diagnostic(`${printed.length} acknowledged, ${events.length} stored`);
});

test('throughput with 64 concurrent writers is reported', async (t) => {
  const dir = tempDataDir(t);
  const audit = await openAuditLog(dir);
  const total = 40_000;
  let next = 0;
  const writer = async () => {
    while (next < total) await audit.record(sampleEvent(`req_${next++}`));
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: 64 }, writer));
  const seconds = (performance.now() - started) / 1000;
  await audit.close();
  const rate = Math.round(total / seconds);
  t.diagnostic(`record(): ${rate} events/s with 64 concurrent writers (${total} events)`);
});

test('an event appended again (a replay) is stored once and the chain stays whole', async (t) => {
  const dir = tempDataDir(t);
  const audit = await openAuditLog(dir);
  const first = toAuditRecord(sampleEvent('first'));
  const second = toAuditRecord(sampleEvent('second'));
  await audit.append(first);
  await Promise.all([audit.append(first), audit.append(second), audit.append(first)]);
  await audit.close();
  const events = tailEvents(dir, 10);
  assert.deepEqual(
    events.map((e) => e.requestId),
    ['first', 'second'],
  );
  assertChain(events);
});
