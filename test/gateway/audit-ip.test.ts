import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { recordedIp } from '../../src/gateway/server.js';

test('a client address is kept whole, cut to its network, or dropped, as configured', () => {
  assert.equal(recordedIp('203.0.113.57', 'full'), '203.0.113.57');
  assert.equal(recordedIp('203.0.113.57', 'truncated'), '203.0.113.0');
  assert.equal(recordedIp('::ffff:198.51.100.9', 'truncated'), '198.51.100.0');
  assert.equal(recordedIp('2001:db8:85a3:8d3:1319:8a2e:370:7348', 'truncated'), '2001:db8:85a3::');
  assert.equal(recordedIp('2001:db8::1', 'truncated'), '2001:db8:0::');
  assert.equal(recordedIp('203.0.113.57', 'none'), null);
  assert.equal(recordedIp('not-an-address', 'truncated'), null);
});

test('audit.clientIp defaults to full and refuses other values', () => {
  assert.equal(configSchema.parse({}).audit.clientIp, 'full');
  assert.equal(configSchema.safeParse({ audit: { clientIp: 'hashed' } }).success, false);
});
