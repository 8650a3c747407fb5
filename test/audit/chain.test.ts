import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalEvent, canonicalJson, chainHash, GENESIS_HASH } from '../../src/audit/chain.js';
import { toAuditRecord } from '../../src/audit/event.js';

test('canonical JSON sorts keys at every level and leaves out undefined members', () => {
  const text = canonicalJson({ b: 1, a: { d: [3, { z: 1, y: null }], c: undefined }, e: 'x' });
  assert.equal(text, '{"a":{"d":[3,{"y":null,"z":1}]},"b":1,"e":"x"}');
  assert.equal(canonicalJson({ x: 1, y: 2 }), canonicalJson({ y: 2, x: 1 }));
});

test('the hash changes with the previous hash, the sequence number and any field', () => {
  const event = toAuditRecord({ requestId: 'r', action: 'models.list', method: 'GET', path: '/' });
  const base = chainHash(GENESIS_HASH, 1, event);
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(chainHash(GENESIS_HASH, 1, { ...event }), base);
  assert.notEqual(chainHash('1'.repeat(64), 1, event), base);
  assert.notEqual(chainHash(GENESIS_HASH, 2, event), base);
  assert.notEqual(chainHash(GENESIS_HASH, 1, { ...event, status: 500 }), base);
});

test('the event serializer writes exactly the canonical JSON, whatever the event holds', () => {
  const full = toAuditRecord({
    requestId: 'req-"quoted"\n',
    action: 'chat.complete',
    method: 'POST',
    path: '/v1/chat/completions',
    keyId: 'key_1',
    keyName: 'naïve 🔑',
    environment: 'production',
    model: 'mistral-small-latest',
    stream: true,
    promptTokens: 12,
    completionTokens: 3,
    totalTokens: 15,
    success: true,
    status: 200,
    upstreamStatus: 200,
    clientIp: '::1',
    userAgent: 'sdk/1.0',
    latencyMs: 12.75,
    guard: { action: 'redact', findings: { email: 2, api_key: 1 } },
  });
  const sparse = toAuditRecord({ requestId: 'r', action: 'unknown', method: 'GET', path: '/' });
  const cases = [
    full,
    sparse,
    { ...full, extra: 'kept by the general path' },
    { ...full, guard: undefined },
    { ...full, latencyMs: Number.NaN },
  ] as (typeof full)[];
  for (const event of cases) {
    assert.equal(canonicalEvent(event, 42), canonicalJson({ ...event, seq: 42 }));
  }
});
