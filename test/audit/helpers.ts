import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chainHash, GENESIS_HASH } from '../../src/audit/chain.js';
import type { AuditEventInput } from '../../src/audit/event.js';
import type { StoredAuditEvent } from '../../src/audit/sqlite-schema.js';

/** A fresh data directory, removed when the test ends. */
export function tempDataDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'mg-audit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A minimal successful chat event. */
export function sampleEvent(
  requestId: string,
  extra: Partial<AuditEventInput> = {},
): AuditEventInput {
  return {
    requestId,
    action: 'chat.complete',
    method: 'POST',
    path: '/v1/chat/completions',
    keyId: 'key_0123456789abcdef',
    keyName: 'ci',
    environment: 'development',
    model: 'mistral-small-latest',
    promptTokens: 10,
    completionTokens: 5,
    totalTokens: 15,
    success: true,
    status: 200,
    latencyMs: 42.5,
    ...extra,
  };
}

/** Throws unless `events` (a whole trail, oldest first) form an unbroken chain from genesis. */
export function assertChain(events: StoredAuditEvent[]): void {
  let prev = GENESIS_HASH;
  events.forEach((stored, i) => {
    const { seq, prevHash, hash, ...event } = stored;
    if (seq !== i + 1) throw new Error(`seq ${seq} at position ${i}`);
    if (prevHash !== prev) throw new Error(`prev_hash broken at seq ${seq}`);
    if (chainHash(prevHash, seq, event) !== hash) throw new Error(`hash broken at seq ${seq}`);
    prev = hash;
  });
}

/** A logger that keeps what it is told. */
export function memoryLogger(): {
  lines: Array<{ level: string; fields: object; message: string }>;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
} {
  const lines: Array<{ level: string; fields: object; message: string }> = [];
  return {
    lines,
    warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
    error: (fields, message) => lines.push({ level: 'error', fields, message }),
  };
}
