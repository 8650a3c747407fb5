import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { assembleStream } from '../../src/gateway/bodies.js';
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

test('a streamed answer is assembled per choice: text, thinking and tool arguments joined', () => {
  const events = [
    { id: 'c1', model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: 'Hel' } }] },
    { id: 'c1', choices: [{ index: 0, delta: { content: [{ type: 'text', text: 'lo' }] } }] },
    {
      id: 'c1',
      choices: [
        {
          index: 0,
          delta: { content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'hm' }] }] },
        },
        {
          index: 1,
          delta: {
            tool_calls: [{ index: 0, id: 't1', function: { name: 'f', arguments: '{"a"' } }],
          },
        },
      ],
    },
    {
      id: 'c1',
      choices: [
        {
          index: 1,
          delta: { tool_calls: [{ index: 0, function: { arguments: ':1}' } }] },
          finish_reason: 'tool_calls',
        },
      ],
    },
    { id: 'c1', choices: [], usage: { total_tokens: 9 } },
  ].map((e) => JSON.stringify(e));
  const answer = assembleStream([...events, 'not json']);
  assert.deepEqual(answer, {
    stream: true,
    id: 'c1',
    model: 'm',
    choices: [
      {
        index: 0,
        role: 'assistant',
        content: 'Hello',
        reasoning: 'hm',
        finish_reason: null,
        tool_calls: [],
      },
      {
        index: 1,
        role: null,
        content: '',
        reasoning: '',
        finish_reason: 'tool_calls',
        tool_calls: [{ id: 't1', name: 'f', arguments: '{"a":1}' }],
      },
    ],
    usage: { total_tokens: 9 },
    other: ['not json'],
  });
});
