import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { verifyTrail } from '../../src/audit/verify.js';
import { Secret } from '../../src/config/secret.js';
import { openAuditTrail, openStores } from '../../src/store/open.js';
import { sampleEvent } from '../audit/helpers.js';
import { relay } from '../support/tcp-relay.js';
import { BACKENDS, PG_URL } from './backends.js';

const postgres = BACKENDS.find((b) => b.name === 'postgres')!;

describe('PostgreSQL outage', { skip: postgres.skip }, () => {
  test('events recorded while PostgreSQL is unreachable are spooled, then replayed', async (t) => {
    const ctx = await postgres.setup(t);
    const link = await relay(t, new URL(PG_URL!));
    const config = {
      ...ctx.config,
      store: { ...ctx.config.store, databaseUrl: new Secret(link.url, 'test') },
      audit: { ...ctx.config.audit, batchSize: 64 },
    };
    const stores = await openStores(config, { prune: false, watchKeys: false });
    t.after(() => stores.close());
    const audit = stores.audit!;

    let sent = 0;
    let failed = 0;
    let running = true;
    const writer = async () => {
      while (running) {
        const id = `req_${sent++}`;
        await audit.record(sampleEvent(id)).catch(() => failed++);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    };
    const writers = Array.from({ length: 8 }, () => writer());
    await new Promise((resolve) => setTimeout(resolve, 300));
    link.cut();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(audit.status()[0]?.spooling, true);
    assert.ok((audit.status()[0]?.spooled ?? 0) > 0);
    link.restore();
    await new Promise((resolve) => setTimeout(resolve, 300));
    running = false;
    await Promise.all(writers);
    for (let i = 0; i < 200 && audit.status()[0]?.spooling; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(audit.status()[0]?.spooling, false);
    assert.equal(failed, 0);
    await stores.close();

    const trail = await openAuditTrail(ctx.config);
    t.after(() => trail.close());
    const stored = new Set<string>();
    let count = 0;
    for await (const event of trail.events({})) {
      stored.add(event.requestId);
      count++;
    }
    assert.equal(count, sent);
    assert.equal(stored.size, sent);
    const report = await verifyTrail(trail);
    assert.equal(report.ok, true, JSON.stringify(report.problems));
  });
});
