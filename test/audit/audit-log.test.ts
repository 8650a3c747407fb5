import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createAuditLog } from '../../src/audit/audit-log.js';
import { isAuditError } from '../../src/audit/errors.js';
import { type AuditEvent, toAuditRecord } from '../../src/audit/event.js';
import { openJsonlWriter, stdoutWriter } from '../../src/audit/jsonl-sink.js';
import type { EventWriter } from '../../src/audit/sink.js';
import { memoryLogger, sampleEvent, tempDataDir } from './helpers.js';

/** A writer kept in memory that can be switched off, like a database going away. */
function fakeWriter(name = 'store') {
  const stored: AuditEvent[] = [];
  const batches: Array<{ size: number; replay: boolean }> = [];
  const state = { down: false };
  const writer: EventWriter = {
    name,
    async write(events, options = {}) {
      await new Promise((resolve) => setImmediate(resolve));
      if (state.down) throw new Error('sink down');
      batches.push({ size: events.length, replay: options.replay === true });
      stored.push(...events);
    },
    async close() {},
  };
  return { writer, stored, batches, state, ids: () => stored.map((e) => e.requestId) };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('condition not reached in 5 s');
}

test('events recorded together leave as one batch and resolve once written', async (t) => {
  const sink = fakeWriter();
  const audit = await createAuditLog([sink.writer], { spoolDir: tempDataDir(t) });
  await Promise.all(Array.from({ length: 50 }, (_, i) => audit.record(sampleEvent(`r${i}`))));
  assert.equal(sink.stored.length, 50);
  assert.deepEqual(sink.batches, [{ size: 50, replay: false }]);
  await audit.close();
});

test('while a sink is down its events are spooled, then replayed in order', async (t) => {
  const dir = tempDataDir(t);
  const logger = memoryLogger();
  const sink = fakeWriter();
  const audit = await createAuditLog([sink.writer], { spoolDir: dir, retryMs: 20, logger });
  await audit.record(sampleEvent('before'));
  sink.state.down = true;
  for (let i = 0; i < 20; i++) await audit.record(sampleEvent(`during_${i}`));
  assert.equal(audit.status()[0]?.spooling, true);
  assert.ok(existsSync(join(dir, 'store.jsonl')));
  assert.equal(audit.healthy(), true);

  sink.state.down = false;
  await until(() => audit.status()[0]?.spooling === false);
  await audit.record(sampleEvent('after'));
  assert.deepEqual(sink.ids(), [
    'before',
    ...Array.from({ length: 20 }, (_, i) => `during_${i}`),
    'after',
  ]);
  assert.ok(sink.batches.some((b) => b.replay));
  assert.equal(readFileSync(join(dir, 'store.jsonl'), 'utf8'), '');
  assert.ok(logger.lines.some((l) => l.message === 'audit sink failed; spooling its events'));
  await audit.close();
});

test('a full spool refuses events with a code and makes the log unhealthy', async (t) => {
  const logger = memoryLogger();
  const sink = fakeWriter();
  sink.state.down = true;
  const audit = await createAuditLog([sink.writer], {
    spoolDir: tempDataDir(t),
    spoolMaxBytes: 2000,
    retryMs: 60_000,
    logger,
  });
  let refused: unknown = null;
  for (let i = 0; i < 50 && refused === null; i++) {
    await audit.record(sampleEvent(`r${i}`)).catch((error) => {
      refused = error;
    });
  }
  assert.ok(isAuditError(refused, 'audit_spool_full'));
  assert.equal(audit.spoolFull(), true);
  assert.equal(audit.healthy(), false);
  assert.ok(logger.lines.some((l) => l.level === 'error'));
  assert.equal(audit.status()[0]?.failed, 1);
  await audit.close();
});

test('an old spool is replayed at start, without its cut last line', async (t) => {
  const dir = tempDataDir(t);
  const old = [toAuditRecord(sampleEvent('old_1')), toAuditRecord(sampleEvent('old_2'))];
  writeFileSync(join(dir, 'store.jsonl'), old.map((e) => `${JSON.stringify(e)}\n`).join(''));
  appendFileSync(join(dir, 'store.jsonl'), '{"id":"cut-short');
  const sink = fakeWriter();
  const audit = await createAuditLog([sink.writer], { spoolDir: dir });
  await until(() => sink.stored.length === 2);
  await audit.record(sampleEvent('new'));
  assert.deepEqual(sink.ids(), ['old_1', 'old_2', 'new']);
  assert.deepEqual(
    sink.stored.slice(0, 2).map((e) => e.id),
    old.map((e) => e.id),
  );
  await audit.close();
});

test('several sinks each get every event; one down does not hold up the other', async (t) => {
  const dir = tempDataDir(t);
  const store = fakeWriter('store');
  const jsonl = await openJsonlWriter(join(dir, 'out', 'audit.jsonl'));
  const audit = await createAuditLog([store.writer, jsonl], { spoolDir: dir, retryMs: 20 });
  await audit.record(sampleEvent('one'));
  store.state.down = true;
  await audit.record(sampleEvent('two'));
  const lines = readFileSync(join(dir, 'out', 'audit.jsonl'), 'utf8')
    .trimEnd()
    .split('\n');
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as AuditEvent).requestId),
    ['one', 'two'],
  );
  assert.deepEqual(
    audit.status().map((s) => [s.name, s.spooling]),
    [
      ['store', true],
      ['jsonl', false],
    ],
  );
  store.state.down = false;
  await until(() => store.stored.length === 2);
  const first = JSON.parse(lines[0]!) as AuditEvent;
  assert.equal(store.stored[0]?.id, first.id);
  await audit.close();
});

test('the stdout sink writes one event per line, with no field outside the schema', async (t) => {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk) => {
    text += chunk;
  });
  const audit = await createAuditLog([stdoutWriter(stream)], { spoolDir: tempDataDir(t) });
  await audit.record({ ...sampleEvent('piped'), authorization: 'Bearer secret' } as never);
  const event = JSON.parse(text) as Record<string, unknown>;
  assert.equal(event.requestId, 'piped');
  assert.equal(text.includes('secret'), false);
  await audit.close();
});

test('a closed log refuses events with audit_closed', async (t) => {
  const audit = await createAuditLog([fakeWriter().writer], { spoolDir: tempDataDir(t) });
  await audit.close();
  await assert.rejects(audit.record(sampleEvent('late')), (e) => isAuditError(e, 'audit_closed'));
});
