import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AuditEventInput, newEventId, toAuditRecord } from '../../src/audit/event.js';
import type { GatewayAuditEvent } from '../../src/gateway/types.js';

const FIELDS = [
  'action',
  'clientIp',
  'completionTokens',
  'environment',
  'errorCode',
  'guard',
  'id',
  'keyId',
  'keyName',
  'latencyMs',
  'method',
  'model',
  'path',
  'promptTokens',
  'requestId',
  'status',
  'stream',
  'success',
  'time',
  'totalTokens',
  'upstreamStatus',
  'userAgent',
];

function gatewayEvent(): GatewayAuditEvent {
  return {
    requestId: 'req_1',
    action: 'chat.complete',
    method: 'POST',
    path: '/v1/chat/completions',
    keyId: 'key_0123456789abcdef',
    keyName: 'ci',
    environment: 'production',
    model: 'mistral-small-latest',
    stream: true,
    promptTokens: 12,
    completionTokens: 30,
    totalTokens: 42,
    success: true,
    status: 200,
    errorCode: null,
    upstreamStatus: 200,
    clientIp: '127.0.0.1',
    userAgent: 'mistral-client-typescript/1.0',
    latencyMs: 123.456,
    guard: { action: 'input:redact', findings: { 'input.email': 2 } },
  };
}

test('an event from the gateway keeps every audit field and gains an id and a time', () => {
  const now = new Date('2025-01-02T03:04:05.678Z');
  const record = toAuditRecord(gatewayEvent(), now);
  assert.deepEqual(Object.keys(record).sort(), FIELDS);
  assert.equal(record.time, '2025-01-02T03:04:05.678Z');
  assert.equal(record.keyName, 'ci');
  assert.equal(record.totalTokens, 42);
  assert.equal(record.latencyMs, 123.46);
  assert.deepEqual(record.guard, { action: 'input:redact', findings: { 'input.email': 2 } });
  assert.match(record.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('fields outside the allow-list never reach the record', () => {
  const input = {
    ...gatewayEvent(),
    apiKey: 'sk-should-not-appear',
    authorization: 'Bearer sk-should-not-appear',
    messages: [{ role: 'user', content: 'a secret prompt' }],
    completion: 'a secret answer',
  };
  const record = toAuditRecord(input);
  assert.deepEqual(Object.keys(record).sort(), FIELDS);
  assert.ok(!JSON.stringify(record).includes('should-not-appear'));
  assert.ok(!JSON.stringify(record).includes('secret'));
});

test('the query string of the path is dropped, since clients put keys there', () => {
  const record = toAuditRecord({ ...gatewayEvent(), path: '/v1/models?key=sk-live#frag' });
  assert.equal(record.path, '/v1/models');
});

test('long strings are cut to their limit without splitting a surrogate pair', () => {
  const userAgent = `${'a'.repeat(255)}😀tail`;
  const record = toAuditRecord({ ...gatewayEvent(), userAgent, model: 'm'.repeat(1000) });
  assert.equal(record.userAgent, 'a'.repeat(255));
  assert.equal(record.model?.length, 128);
  const exact = toAuditRecord({ ...gatewayEvent(), userAgent: 'u'.repeat(300) });
  assert.equal(exact.userAgent?.length, 256);
});

test('badly typed values become null or a safe default instead of failing the batch', () => {
  const input = {
    requestId: 'req_2',
    action: 'passthrough',
    method: 'GET',
    path: '/v1/files',
    promptTokens: '12',
    completionTokens: -1,
    totalTokens: 7.9,
    status: 'ok',
    upstreamStatus: 1e6,
    latencyMs: Number.NaN,
    keyName: { toString: () => 'x' },
    stream: 'yes',
    success: 1,
  } as unknown as AuditEventInput;
  const record = toAuditRecord(input);
  assert.equal(record.promptTokens, null);
  assert.equal(record.completionTokens, null);
  assert.equal(record.totalTokens, 7);
  assert.equal(record.status, 0);
  assert.equal(record.upstreamStatus, null);
  assert.equal(record.latencyMs, 0);
  assert.equal(record.keyName, null);
  assert.equal(record.stream, false);
  assert.equal(record.success, false);
});

test('the guard summary keeps counts per category and drops anything else', () => {
  const findings: Record<string, unknown> = { api_key: 2, email: 1.5, 'bad name!': 3, neg: -1 };
  for (let i = 0; i < 40; i++) findings[`cat_${i}`] = 1;
  const record = toAuditRecord({
    ...gatewayEvent(),
    guard: {
      action: 'redact',
      findings: findings as Record<string, number>,
      matched: 'sk-secret',
    } as never,
  });
  assert.equal(record.guard?.action, 'redact');
  assert.equal(record.guard?.findings.api_key, 2);
  assert.equal(record.guard?.findings.email, 1);
  assert.equal(record.guard?.findings['bad name!'], undefined);
  assert.equal(record.guard?.findings.neg, undefined);
  assert.equal(Object.keys(record.guard?.findings ?? {}).length, 32);
  assert.ok(!JSON.stringify(record).includes('sk-secret'));
});

test('event ids are UUIDv7 and strictly increasing even within one millisecond', () => {
  const now = Date.now();
  const ids = Array.from({ length: 10_000 }, () => newEventId(now));
  for (let i = 1; i < ids.length; i++)
    assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} < ${ids[i]}`);
  const later = newEventId(now + 5000);
  assert.ok(ids.at(-1)! < later);
  const ms = Number.parseInt(later.replace(/-/g, '').slice(0, 12), 16);
  assert.equal(ms, now + 5000);
});
