import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isAuditError } from '../../src/audit/errors.js';
import { tailEvents } from '../../src/audit/reader.js';
import { openAuditLog } from '../../src/audit/sqlite-sink.js';
import { AUDIT_SQLITE_FILE, openSqlite } from '../../src/store/sqlite.js';
import { sampleEvent, tempDataDir } from './helpers.js';

test('tail returns the newest n events, oldest first', async (t) => {
  const dir = tempDataDir(t);
  const audit = await openAuditLog(dir);
  for (let i = 0; i < 10; i++) await audit.record(sampleEvent(`req_${i}`));
  await audit.close();
  const events = tailEvents(dir, 3);
  assert.deepEqual(
    events.map((e) => e.requestId),
    ['req_7', 'req_8', 'req_9'],
  );
  assert.deepEqual(
    events.map((e) => e.seq),
    [8, 9, 10],
  );
});

test('tail of a missing data directory fails with a code and creates nothing', (t) => {
  const missing = join(tempDataDir(t), 'nowhere');
  assert.throws(
    () => tailEvents(missing, 5),
    (e) => isAuditError(e, 'audit_store_missing'),
  );
  assert.equal(existsSync(missing), false);
});

test('tail of a data directory without a database fails and creates no file', (t) => {
  const dir = tempDataDir(t);
  assert.throws(
    () => tailEvents(dir, 5),
    (e) => isAuditError(e, 'audit_store_missing'),
  );
  assert.deepEqual(readdirSync(dir), []);
});

test('tail of a database no gateway has audited into yet is empty', (t) => {
  const dir = tempDataDir(t);
  const db = openSqlite(join(dir, AUDIT_SQLITE_FILE));
  db.exec('CREATE TABLE other (x INTEGER)');
  db.close();
  assert.deepEqual(tailEvents(dir, 5), []);
});

test('tail reads while a sink is still writing', async (t) => {
  const dir = tempDataDir(t);
  const audit = await openAuditLog(dir);
  await audit.record(sampleEvent('req_live'));
  assert.deepEqual(
    tailEvents(dir, 1).map((e) => e.requestId),
    ['req_live'],
  );
  await audit.close();
});
