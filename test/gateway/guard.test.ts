import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/errors.js';
import { profileSchema } from '../../src/config/schema.js';
import { isGuardError } from '../../src/errors.js';
import {
  auditSummary,
  compileGuards,
  inspectAnswer,
  inspectRequest,
  newOutcome,
  redactErrorMessage,
  StreamGuard,
} from '../../src/gateway/guard.js';
import { createLogger } from '../../src/logging.js';
import { ENDPOINTS } from '../../src/mistral/endpoints.js';

const logger = createLogger({ level: 'silent' });
const CHAT = ENDPOINTS.find((e) => e.action === 'chat.complete')!;

function guardOf(guard: unknown) {
  const guards = compileGuards({ test: profileSchema.parse({ guard }) });
  return guards.get('test')!;
}

function chunk(content: string, finish: string | null = null) {
  return JSON.stringify({
    id: 'c1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'm',
    choices: [{ index: 0, delta: { content }, finish_reason: finish }],
  });
}

function contentOf(data: string): string {
  return JSON.parse(data).choices[0]?.delta?.content ?? '';
}

test('an unsafe custom pattern is a configuration error naming the profile', () => {
  assert.throws(
    () =>
      compileGuards({
        test: profileSchema.parse({
          guard: { customPatterns: [{ id: 'bad', pattern: '(a+)+$' }] },
        }),
      }),
    (error: unknown) =>
      error instanceof ConfigError && error.problems[0]!.path === 'profiles.test.guard',
  );
});

test('a disabled guard is not compiled at all', () => {
  assert.equal(compileGuards({ test: profileSchema.parse({ guard: { enabled: false } }) }).size, 0);
});

test('each value gets its own action: redacted ones are replaced, flagged ones kept', () => {
  const guard = guardOf({ input: { categories: { pii: 'redact' }, detectors: { email: 'flag' } } });
  const body = {
    model: 'm',
    messages: [{ role: 'user', content: 'card 4111 1111 1111 1111, mail jo@example.com' }],
  };
  const outcome = newOutcome();
  inspectRequest(guard, CHAT, body, outcome, logger);
  assert.equal(body.messages[0]!.content, 'card [REDACTED:CARD], mail jo@example.com');
  assert.equal(outcome.input?.action, 'redact');
  assert.deepEqual(auditSummary(outcome), {
    action: 'input:redact',
    findings: { 'input.payment_card': 1, 'input.email': 1 },
  });
});

test('text without findings leaves no guard summary', () => {
  const guard = guardOf({});
  const outcome = newOutcome();
  inspectRequest(
    guard,
    CHAT,
    { model: 'm', messages: [{ role: 'user', content: 'hi' }] },
    outcome,
    logger,
  );
  assert.equal(auditSummary(outcome), null);
});

test('a blocked answer is withheld whole and names the detector, not the value', () => {
  const guard = guardOf({ output: { categories: { secret: 'block' } } });
  const answer = {
    choices: [
      { index: 0, message: { role: 'assistant', content: 'use mg_ nothing; jo@example.com' } },
    ],
  };
  const outcome = newOutcome();
  inspectAnswer(guard, answer, outcome, logger);
  assert.equal(answer.choices[0]!.message.content, 'use mg_ nothing; [REDACTED:EMAIL]');
  const secret = {
    choices: [{ message: { content: 'postgres://app:hunter2x9@db.example.com/app' } }],
  };
  assert.throws(
    () => inspectAnswer(guard, secret, newOutcome(), logger),
    (error: unknown) =>
      isGuardError(error, 'sensitive_data_blocked') &&
      /connection_string/.test(error.message) &&
      !error.message.includes('hunter2x9'),
  );
});

test('a card split over four events is released whole, redacted, never in part', () => {
  const guard = guardOf({});
  const stream = new StreamGuard(guard, newOutcome(), logger);
  const pieces = ['Your card 4111 ', '1111 ', '1111 ', '1111 is on file.'];
  const out = pieces.map((p, i) => contentOf(stream.event(chunk(p, i === 3 ? 'stop' : null))));
  for (const piece of out) assert.doesNotMatch(piece, /1111/);
  assert.equal(out.join(''), 'Your card [REDACTED:CARD] is on file.');
});

test('text held back when the stream ends without a finish reason comes out before [DONE]', () => {
  const guard = guardOf({});
  const stream = new StreamGuard(guard, newOutcome(), logger);
  const first = contentOf(stream.event(chunk('short answer')));
  const rest = stream.finish().map(contentOf).join('');
  assert.equal(first + rest, 'short answer');
});

test('a blocked value in a stream ends it before any of it is sent', () => {
  const guard = guardOf({ output: { categories: { pii: 'block' } } });
  const stream = new StreamGuard(guard, newOutcome(), logger);
  const sent: string[] = [];
  assert.throws(
    () => {
      for (const piece of ['write to jo', '@example', '.com now', ' please']) {
        sent.push(contentOf(stream.event(chunk(piece))));
      }
      stream.finish();
    },
    (error: unknown) => isGuardError(error, 'sensitive_data_blocked'),
  );
  assert.ok(!sent.join('').includes('jo'), `sent: ${sent.join('|')}`);
});

test('an event the guard cannot read ends the stream rather than passing unread', () => {
  const stream = new StreamGuard(guardOf({}), newOutcome(), logger);
  assert.throws(
    () => stream.event('{not json'),
    (e: unknown) => isGuardError(e, 'upstream_error'),
  );
});

function toolChunk(args: string, finish: string | null = null) {
  return JSON.stringify({
    id: 'c1',
    object: 'chat.completion.chunk',
    model: 'm',
    choices: [
      {
        index: 0,
        delta: { tool_calls: [{ index: 0, id: 't1', function: { name: 'f', arguments: args } }] },
        finish_reason: finish,
      },
    ],
  });
}

test('streamed tool call arguments are redacted like text, across events', () => {
  const stream = new StreamGuard(guardOf({}), newOutcome(), logger);
  const pieces = ['{"to": "jane.d', 'oe@example', '.com", "n": 1}'];
  const out = pieces
    .map((p, i) => stream.event(toolChunk(p, i === 2 ? 'tool_calls' : null)))
    .map((d) => JSON.parse(d).choices[0].delta.tool_calls?.[0]?.function.arguments ?? '');
  assert.equal(out.join(''), '{"to": "[REDACTED:EMAIL]", "n": 1}');
  for (const piece of out) assert.ok(!piece.includes('jane'));
});

test('streamed thinking is redacted and stays a thinking chunk', () => {
  const stream = new StreamGuard(guardOf({}), newOutcome(), logger);
  const event = (text: string, finish: string | null) =>
    JSON.stringify({
      choices: [
        {
          index: 0,
          delta: { content: [{ type: 'thinking', thinking: [{ type: 'text', text }] }] },
          finish_reason: finish,
        },
      ],
    });
  const out = [
    stream.event(event('the card is 4111 1111 ', null)),
    stream.event(event('1111 1111, noted', 'stop')),
  ].map((d) => {
    const content = JSON.parse(d).choices[0].delta.content;
    return Array.isArray(content)
      ? content
          .map((c: { thinking?: Array<{ text: string }> }) => c.thinking?.[0]?.text ?? '')
          .join('')
      : '';
  });
  assert.equal(out.join(''), 'the card is [REDACTED:CARD], noted');
});

test('an error event in a stream has its message redacted', () => {
  const stream = new StreamGuard(guardOf({}), newOutcome(), logger);
  const out = stream.event(
    JSON.stringify({ object: 'error', message: 'bad input near jane.doe@example.com', code: 1 }),
  );
  assert.equal(JSON.parse(out).message, 'bad input near [REDACTED:EMAIL]');
});

test('a value split over two text chunks of one message is found and redacted', () => {
  const guard = guardOf({});
  const body = {
    model: 'm',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'card 4111 1111 ' },
          { type: 'text', text: '1111 1111 ok' },
        ],
      },
    ],
  };
  inspectRequest(guard, CHAT, body, newOutcome(), logger);
  const texts = body.messages[0]!.content.map((c) => c.text);
  assert.deepEqual(texts, ['card [REDACTED:CARD]', ' ok']);
});

test('a credential in a tool description is blocked, naming the field', () => {
  const guard = guardOf({});
  const body = {
    model: 'm',
    messages: [{ role: 'user', content: 'hi' }],
    tools: [
      {
        type: 'function',
        function: {
          name: 'deploy',
          description: 'uses postgres://admin:s3cretPassw0rd@db.example.com/prod',
          parameters: { type: 'object' },
        },
      },
    ],
  };
  assert.throws(
    () => inspectRequest(guard, CHAT, body, newOutcome(), logger),
    (error: unknown) =>
      isGuardError(error, 'sensitive_data_blocked') &&
      error.param === 'tools[0].function.description',
  );
});

test('an upstream error is redacted in every text field, with the guard off too', () => {
  const body = {
    message: 'no access for jane.doe@example.com',
    param: 'card 4111 1111 1111 1111',
    code: 'jane.doe@example.com',
    type: 'invalid_request_error',
  };
  redactErrorMessage(undefined, body);
  assert.equal(body.message, 'no access for [REDACTED:EMAIL]');
  assert.match(body.param, /\[REDACTED:CARD\]/);
  assert.equal(body.code, '[REDACTED:EMAIL]');
  assert.equal(body.type, 'invalid_request_error');
});
