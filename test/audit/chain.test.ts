import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson, chainHash, GENESIS_HASH } from '../../src/audit/chain.js';
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
