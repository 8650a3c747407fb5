import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import type { AuditLog } from '../../src/audit/audit-log.js';
import { chainHash, hashedEvent } from '../../src/audit/chain.js';
import { toAuditRecord } from '../../src/audit/event.js';
import type { AuditTrail } from '../../src/audit/trail.js';
import { verifyTrail } from '../../src/audit/verify.js';
import type { Config } from '../../src/config/load.js';
import { openAuditTrail, openStores } from '../../src/store/open.js';
import { sampleEvent } from '../audit/helpers.js';
import { BACKENDS, type BackendContext } from './backends.js';

const HMAC_KEY = 'test-only-hmac-key-0123456789abcdef';
const DAY_MS = 86_400_000;

async function auditOf(t: TestContext, config: Config): Promise<AuditLog> {
  const stores = await openStores(config, { prune: false });
  t.after(() => stores.close());
  assert.ok(stores.audit);
  return stores.audit;
}

async function trailOf(t: TestContext, config: Config): Promise<AuditTrail> {
  const trail = await openAuditTrail(config, { write: true });
  t.after(() => trail.close());
  return trail;
}

function withAudit(config: Config, audit: Partial<Config['audit']>): Config {
  return { ...config, audit: { ...config.audit, ...audit } };
}

async function recordMany(audit: AuditLog, n: number, prefix = 'req'): Promise<void> {
  for (let i = 0; i < n; i++) await audit.record(sampleEvent(`${prefix}_${i}`));
}

/** Copies the row at `seq` as a new row with `changes`, through raw SQL. */
async function insertCopy(
  ctx: BackendContext,
  seq: number,
  changes: Record<string, unknown>,
): Promise<void> {
  const [row] = await ctx.sql('audit', 'SELECT * FROM audit_events WHERE seq = ?', [seq]);
  assert.ok(row);
  const values = { ...row, ...changes };
  const columns = Object.keys(values);
  const params = columns.map((c) => {
    const v = values[c];
    return v !== null && typeof v === 'object' && !(v instanceof Date) ? JSON.stringify(v) : v;
  });
  await ctx.sql(
    'audit',
    `INSERT INTO audit_events (${columns.join(', ')})
     VALUES (${columns.map(() => '?').join(', ')})`,
    params,
  );
}

for (const backend of BACKENDS) {
  describe(`audit trail on ${backend.name}`, { skip: backend.skip }, () => {
    test('a recorded event reads back with every field intact and verifies', async (t) => {
      const ctx = await backend.setup(t);
      const audit = await auditOf(t, ctx.config);
      const guard = { action: 'input:redact', findings: { 'input.email': 2 } };
      await audit.record(
        sampleEvent('req_roundtrip', { stream: true, guard, upstreamStatus: 200, latencyMs: 0.1 }),
      );
      const trail = await trailOf(t, ctx.config);
      const [event, ...rest] = await trail.latest({}, 10);
      assert.equal(rest.length, 0);
      assert.ok(event);
      assert.equal(event.seq, 1);
      assert.equal(event.requestId, 'req_roundtrip');
      assert.equal(event.stream, true);
      assert.equal(event.totalTokens, 15);
      assert.equal(event.latencyMs, 0.1);
      assert.deepEqual(event.guard, guard);
      assert.equal(chainHash(event.prevHash, event.seq, hashedEvent(event)), event.hash);
      assert.equal((await verifyTrail(trail)).ok, true);
    });

    test('stored bodies read back, verify, and an edit to one breaks the chain', async (t) => {
      const ctx = await backend.setup(t);
      const audit = await auditOf(t, ctx.config);
      const bodies = {
        request: '{"messages":[{"content":"mail [REDACTED:email]","role":"user"}]}',
        response: '{"choices":[]}',
        truncated: false,
      };
      await audit.record(sampleEvent('req_plain'));
      await audit.record(sampleEvent('req_bodies', { bodies }));
      const trail = await trailOf(t, ctx.config);
      const events = await trail.latest({}, 2);
      const withBodies = events.find((e) => e.requestId === 'req_bodies');
      const plain = events.find((e) => e.requestId === 'req_plain');
      assert.deepEqual(withBodies?.bodies, bodies);
      assert.equal(plain?.bodies, undefined, 'an event without bodies reads back without them');
      assert.equal((await verifyTrail(trail)).ok, true);
      await ctx.sql(
        'audit',
        "UPDATE audit_events SET bodies = REPLACE(bodies, '[REDACTED:email]', 'a@b.example') WHERE seq = ?",
        [withBodies?.seq],
      );
      const report = await verifyTrail(await trailOf(t, ctx.config));
      assert.equal(report.problems[0]?.kind, 'edited');
      assert.equal(report.problems[0]?.seq, withBodies?.seq);
    });

    test('a NUL in a client-chosen text is stored as U+FFFD, not lost with its batch', async (t) => {
      const ctx = await backend.setup(t);
      const audit = await auditOf(t, ctx.config);
      await Promise.all([
        audit.record(
          sampleEvent('req_nul', { model: 'mistral\u0000small', userAgent: 'ua\u0000' }),
        ),
        audit.record(sampleEvent('req_next')),
      ]);
      const trail = await trailOf(t, ctx.config);
      const events = await trail.latest({}, 5);
      const nul = events.find((e) => e.requestId === 'req_nul');
      assert.equal(nul?.model, 'mistral\uFFFDsmall');
      assert.equal(nul?.userAgent, 'ua\uFFFD');
      assert.ok(events.some((e) => e.requestId === 'req_next'));
      assert.equal((await verifyTrail(trail)).ok, true);
    });

    test('1,000 concurrent records are stored once each, in one unbroken chain', async (t) => {
      const ctx = await backend.setup(t);
      const audit = await auditOf(t, ctx.config);
      const ids = Array.from({ length: 1000 }, (_, i) => `req_${i}`);
      await Promise.all(ids.map((id) => audit.record(sampleEvent(id))));
      const trail = await trailOf(t, ctx.config);
      const stored = [];
      for await (const event of trail.events({})) stored.push(event.requestId);
      assert.deepEqual(stored.sort(), [...ids].sort());
      const report = await verifyTrail(trail);
      assert.equal(report.ok, true, JSON.stringify(report.problems));
      assert.equal(report.events, 1000);
    });

    test('two writers on one store each keep a verifiable chain', async (t) => {
      const ctx = await backend.setup(t);
      const [a, b] = [await auditOf(t, ctx.config), await auditOf(t, ctx.config)];
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).record(sampleEvent(`req_${i}`))),
      );
      const report = await verifyTrail(await trailOf(t, ctx.config));
      assert.equal(report.ok, true, JSON.stringify(report.problems));
      assert.equal(report.events, 200);
      assert.equal(report.chains, backend.name === 'sqlite' ? 1 : 2);
    });

    test('an edited event breaks the chain at that event', async (t) => {
      const ctx = await backend.setup(t);
      await recordMany(await auditOf(t, ctx.config), 10);
      await ctx.sql('audit', "UPDATE audit_events SET model = 'other' WHERE seq = 4");
      const report = await verifyTrail(await trailOf(t, ctx.config));
      assert.equal(report.ok, false);
      assert.equal(report.problems[0]?.kind, 'edited');
      assert.equal(report.problems[0]?.seq, 4);
    });

    test('a trail whose chain head was wiped does not verify', async (t) => {
      const ctx = await backend.setup(t);
      await recordMany(await auditOf(t, ctx.config), 10);
      const heads = backend.name === 'sqlite' ? 'audit_chain_head' : 'audit_chains';
      await ctx.sql('audit', `DELETE FROM ${heads}`);
      const report = await verifyTrail(await trailOf(t, ctx.config));
      assert.equal(report.ok, false, 'a wiped head passed as an intact trail');
    });

    test('a deleted event is named by the gap it leaves', async (t) => {
      const ctx = await backend.setup(t);
      await recordMany(await auditOf(t, ctx.config), 10);
      await ctx.sql('audit', 'DELETE FROM audit_events WHERE seq = 6');
      const report = await verifyTrail(await trailOf(t, ctx.config));
      assert.equal(report.ok, false);
      assert.equal(report.problems[0]?.kind, 'missing');
      assert.equal(report.problems[0]?.seq, 7);
      assert.match(report.problems[0]!.message, /events 6 before seq 7 are missing/);
    });

    test('the last event deleted is caught by the chain head', async (t) => {
      const ctx = await backend.setup(t);
      await recordMany(await auditOf(t, ctx.config), 10);
      await ctx.sql('audit', 'DELETE FROM audit_events WHERE seq = 10');
      const report = await verifyTrail(await trailOf(t, ctx.config));
      assert.deepEqual(
        report.problems.map((p) => [p.kind, p.seq]),
        [['missing', 10]],
      );
    });

    test('an inserted event is caught even when its own hash is right', async (t) => {
      const ctx = await backend.setup(t);
      await recordMany(await auditOf(t, ctx.config), 5);
      const trail = await trailOf(t, ctx.config);
      const [last] = await trail.latest({}, 1);
      assert.ok(last);
      const forged = { ...hashedEvent(last), id: 'forged-event', requestId: 'forged' };
      await insertCopy(ctx, 5, {
        seq: 6,
        id: forged.id,
        request_id: forged.requestId,
        prev_hash: last.hash,
        hash: chainHash(last.hash, 6, forged),
      });
      const report = await verifyTrail(trail);
      assert.deepEqual(
        report.problems.map((p) => [p.kind, p.seq]),
        [['inserted', 6]],
      );
    });

    test('two events swapped are caught where the order breaks', async (t) => {
      const ctx = await backend.setup(t);
      await recordMany(await auditOf(t, ctx.config), 10);
      await ctx.sql('audit', 'UPDATE audit_events SET seq = -1 WHERE seq = 3');
      await ctx.sql('audit', 'UPDATE audit_events SET seq = 3 WHERE seq = 4');
      await ctx.sql('audit', 'UPDATE audit_events SET seq = 4 WHERE seq = -1');
      const report = await verifyTrail(await trailOf(t, ctx.config));
      assert.equal(report.ok, false);
      assert.equal(report.problems[0]?.kind, 'broken_link');
      assert.equal(report.problems[0]?.seq, 3);
    });

    test('a rewritten chain passes without a key, fails on its signed checkpoints', async (t) => {
      const ctx = await backend.setup(t, { env: { MISTRAL_GUARD_AUDIT_HMAC_KEY: HMAC_KEY } });
      const config = withAudit(ctx.config, { checkpointEvery: 5 });
      await recordMany(await auditOf(t, config), 12);
      const trail = await trailOf(t, config);
      assert.equal((await verifyTrail(trail, { hmacKey: HMAC_KEY })).ok, true);

      // Someone with write access but no key edits event 3 and recomputes every hash after it,
      // the head and the checkpoint hashes, so that nothing points at the edit.
      const events = await trail.chainEvents((await trail.heads())[0]!.chainId, 0, 100);
      let prev = events[1]!.hash;
      const rewritten = new Map<number, string>();
      for (const event of events.slice(2)) {
        const changed = { ...hashedEvent(event), model: event.seq === 3 ? 'other' : event.model };
        const hash = chainHash(prev, event.seq, changed);
        await ctx.sql(
          'audit',
          'UPDATE audit_events SET model = ?, prev_hash = ?, hash = ? WHERE seq = ?',
          [changed.model, prev, hash, event.seq],
        );
        rewritten.set(event.seq, hash);
        prev = hash;
      }
      if (backend.name === 'sqlite') {
        await ctx.sql('audit', 'UPDATE audit_chain_head SET hash = ?', [prev]);
      } else {
        await ctx.sql('audit', 'UPDATE audit_chains SET head_hash = ?', [prev]);
      }
      for (const [seq, hash] of rewritten) {
        await ctx.sql('audit', 'UPDATE audit_checkpoints SET hash = ? WHERE seq = ?', [hash, seq]);
      }

      const unkeyed = await verifyTrail(trail);
      assert.equal(unkeyed.ok, true);
      assert.equal(unkeyed.keyGiven, false);
      assert.ok(unkeyed.checkpoints.unchecked >= 2);
      const keyed = await verifyTrail(trail, { hmacKey: HMAC_KEY });
      assert.equal(keyed.ok, false);
      assert.ok(keyed.problems.every((p) => p.kind === 'bad_signature'));
      assert.ok(keyed.problems.some((p) => p.seq === 5));
    });

    test('without a key, checkpoints are written unsigned', async (t) => {
      const ctx = await backend.setup(t);
      await recordMany(await auditOf(t, withAudit(ctx.config, { checkpointEvery: 3 })), 7);
      const report = await verifyTrail(await trailOf(t, ctx.config), { hmacKey: HMAC_KEY });
      assert.equal(report.ok, true);
      assert.ok(report.checkpoints.unsigned >= 2);
      assert.equal(report.checkpoints.valid, 0);
    });

    test('queries filter by time, key, model, status and action; stats add up', async (t) => {
      const ctx = await backend.setup(t);
      const audit = await auditOf(t, ctx.config);
      const day = new Date('2026-02-01T10:00:00.000Z');
      const at = (hours: number) => new Date(day.getTime() + hours * 3_600_000);
      const inputs = [
        [sampleEvent('a1', { keyId: 'key_A' }), at(0)],
        [sampleEvent('a2', { keyId: 'key_A', model: 'codestral-latest' }), at(1)],
        [
          sampleEvent('a3', {
            keyId: 'key_A',
            success: false,
            status: 400,
            errorCode: 'sensitive_data_blocked',
            totalTokens: null,
            guard: { action: 'input:block', findings: { 'input.api_key': 1 } },
          }),
          at(2),
        ],
        [sampleEvent('b1', { keyId: 'key_B', action: 'embeddings.create' }), at(25)],
      ] as const;
      for (const [input, time] of inputs) await audit.append(toAuditRecord(input, time));
      const trail = await trailOf(t, ctx.config);
      const ids = async (filter: Parameters<AuditTrail['events']>[0]) => {
        const found: string[] = [];
        for await (const e of trail.events(filter)) found.push(e.requestId);
        return found;
      };
      assert.deepEqual(await ids({}), ['a1', 'a2', 'a3', 'b1']);
      assert.deepEqual(await ids({ keyId: 'key_A', status: 'ok' }), ['a1', 'a2']);
      assert.deepEqual(await ids({ status: 'error' }), ['a3']);
      assert.deepEqual(await ids({ model: 'codestral-latest' }), ['a2']);
      assert.deepEqual(await ids({ action: 'embeddings.create' }), ['b1']);
      assert.deepEqual(await ids({ since: at(1), until: at(25) }), ['a2', 'a3']);
      assert.deepEqual(
        (await trail.latest({ keyId: 'key_A' }, 2)).map((e) => e.requestId),
        ['a2', 'a3'],
      );

      assert.deepEqual(await trail.stats({}), [
        {
          day: '2026-02-01',
          keyId: 'key_A',
          model: 'codestral-latest',
          requests: 1,
          promptTokens: 10,
          completionTokens: 5,
          totalTokens: 15,
          errors: 0,
          blocks: 0,
        },
        {
          day: '2026-02-01',
          keyId: 'key_A',
          model: 'mistral-small-latest',
          requests: 2,
          promptTokens: 20,
          completionTokens: 10,
          totalTokens: 15,
          errors: 1,
          blocks: 1,
        },
        {
          day: '2026-02-02',
          keyId: 'key_B',
          model: 'mistral-small-latest',
          requests: 1,
          promptTokens: 10,
          completionTokens: 5,
          totalTokens: 15,
          errors: 0,
          blocks: 0,
        },
      ]);
    });

    test('pruned events leave a rest that verifies from a signed checkpoint', async (t) => {
      const ctx = await backend.setup(t, { env: { MISTRAL_GUARD_AUDIT_HMAC_KEY: HMAC_KEY } });
      const config = withAudit(ctx.config, { retentionDays: 30, checkpointEvery: 4 });
      const audit = await auditOf(t, config);
      const old = new Date(Date.now() - 40 * DAY_MS);
      for (let i = 0; i < 10; i++) {
        await audit.append(toAuditRecord(sampleEvent(`old_${i}`), new Date(old.getTime() + i)));
      }
      await recordMany(audit, 5, 'new');
      await audit.flush();

      const stores = await openStores(config, { prune: false });
      t.after(() => stores.close());
      const result = await stores.prune();
      assert.equal(result?.deleted, 10);
      const trail = await trailOf(t, config);
      const left = [];
      for await (const e of trail.events({})) left.push(e.requestId);
      assert.deepEqual(left, ['new_0', 'new_1', 'new_2', 'new_3', 'new_4']);
      const report = await verifyTrail(trail, { hmacKey: HMAC_KEY });
      assert.equal(report.ok, true, JSON.stringify(report.problems));

      // Deleting what retention kept is still caught.
      await ctx.sql('audit', 'DELETE FROM audit_events WHERE seq = 11');
      const broken = await verifyTrail(trail, { hmacKey: HMAC_KEY });
      assert.equal(broken.problems[0]?.kind, 'missing');
    });

    test('a prune checkpoint without a valid signature is not trusted as a start', async (t) => {
      const ctx = await backend.setup(t);
      const audit = await auditOf(t, ctx.config);
      const old = new Date(Date.now() - 40 * DAY_MS);
      for (let i = 0; i < 3; i++) await audit.append(toAuditRecord(sampleEvent(`old_${i}`), old));
      await recordMany(audit, 2, 'new');
      const trail = await trailOf(t, ctx.config);
      await trail.prune(new Date(Date.now() - 30 * DAY_MS), null);
      assert.equal((await verifyTrail(trail)).ok, true);
      const keyed = await verifyTrail(trail, { hmacKey: HMAC_KEY });
      assert.deepEqual(
        keyed.problems.map((p) => p.kind),
        ['unvouched_start'],
      );
    });
  });
}
