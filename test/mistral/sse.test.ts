import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createSseParser,
  formatSseEvent,
  isDoneEvent,
  parseChunkUsage,
  type SseEvent,
  SseEventTooLargeError,
} from '../../src/mistral/sse.js';

const CHUNK_1 = JSON.stringify({
  id: 'c1',
  object: 'chat.completion.chunk',
  choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
  usage: null,
});
const CHUNK_2 = JSON.stringify({
  id: 'c1',
  object: 'chat.completion.chunk',
  choices: [{ index: 0, delta: { content: 'Monet é' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, num_cached_tokens: 0 },
});

/** A stream mixing every line end, a comment, a named event and multi-line data. */
const SAMPLE = [
  ': keep-alive\n',
  `data: ${CHUNK_1}\r\n\r\n`,
  'event: message.output.delta\rdata: line one\rdata:line two\r\r',
  'id: 7\nretry: 1000\nunknown: x\ndata\n\n',
  `data: ${CHUNK_2}\n\n`,
  'data: [DONE]\n\n',
].join('');

const EXPECTED: SseEvent[] = [
  { data: CHUNK_1 },
  { event: 'message.output.delta', data: 'line one\nline two' },
  { data: '', id: '7', retry: 1000 },
  { data: CHUNK_2 },
  { data: '[DONE]' },
];

function parseInPieces(pieces: string[]): SseEvent[] {
  const parser = createSseParser();
  const events: SseEvent[] = [];
  for (const piece of pieces) events.push(...parser.push(piece));
  events.push(...parser.end());
  return events;
}

test('a sample stream parses into its events', () => {
  assert.deepEqual(parseInPieces([SAMPLE]), EXPECTED);
});

test('splitting the stream at any position gives identical events', () => {
  for (let i = 0; i <= SAMPLE.length; i++) {
    const events = parseInPieces([SAMPLE.slice(0, i), SAMPLE.slice(i)]);
    assert.deepEqual(events, EXPECTED, `split at ${i}`);
  }
});

test('splitting the stream at every pair of positions gives identical events', () => {
  const step = 7;
  for (let i = 0; i <= SAMPLE.length; i += step) {
    for (let j = i; j <= SAMPLE.length; j += 3) {
      const events = parseInPieces([SAMPLE.slice(0, i), SAMPLE.slice(i, j), SAMPLE.slice(j)]);
      assert.deepEqual(events, EXPECTED, `split at ${i} and ${j}`);
    }
  }
});

test('feeding the stream one character at a time gives identical events', () => {
  assert.deepEqual(parseInPieces([...SAMPLE]), EXPECTED);
});

test('a CR ending one chunk and a LF starting the next make one line end', () => {
  const events = parseInPieces(['data: a\r', '\ndata: b\r', '\n\r', '\n']);
  assert.deepEqual(events, [{ data: 'a\nb' }]);
});

test('the done sentinel is recognised', () => {
  const events = parseInPieces(['data: [DONE]\n\n']);
  assert.equal(events.length, 1);
  assert.ok(isDoneEvent(events[0]!));
  assert.ok(!isDoneEvent({ data: '[DONE] ' }));
});

test('an event without data is not dispatched', () => {
  assert.deepEqual(parseInPieces(['event: ping\n\n: comment\n\n']), []);
});

test('end releases a last event that had data but no blank line', () => {
  const parser = createSseParser();
  assert.deepEqual(parser.push('data: [DONE]'), []);
  assert.deepEqual(parser.end(), [{ data: '[DONE]' }]);
  assert.deepEqual(parser.end(), []);
});

test('an event longer than the cap throws a typed error', () => {
  const parser = createSseParser({ maxEventChars: 100 });
  assert.throws(() => parser.push(`data: ${'x'.repeat(200)}`), SseEventTooLargeError);
});

test('the cap holds when an endless line arrives in small chunks', () => {
  const parser = createSseParser({ maxEventChars: 1000 });
  parser.push('data: ');
  assert.throws(
    () => {
      for (let i = 0; i < 1000; i++) parser.push('xxxxxxxxxx');
    },
    (error: unknown) => error instanceof SseEventTooLargeError && error.limit === 1000,
  );
});

test('the cap counts every data line of one event', () => {
  const parser = createSseParser({ maxEventChars: 100 });
  assert.throws(() => parser.push('data: 0123456789\n'.repeat(20)), SseEventTooLargeError);
});

test('the cap applies per event, not to the whole stream', () => {
  const parser = createSseParser({ maxEventChars: 100 });
  let count = 0;
  for (let i = 0; i < 1000; i++) count += parser.push('data: 0123456789\n\n').length;
  assert.equal(count, 1000);
});

test('comments do not count towards the cap', () => {
  const parser = createSseParser({ maxEventChars: 100 });
  assert.doesNotThrow(() => parser.push(': keep-alive\n'.repeat(1000)));
});

test('the default cap is 1 MiB', () => {
  const parser = createSseParser();
  assert.doesNotThrow(() => parser.push(`data: ${'x'.repeat(1024 * 1024 - 10)}`));
  assert.throws(() => parser.push('x'.repeat(20)), SseEventTooLargeError);
});

test('parsing time stays linear on long streams', () => {
  const lines = 'data: {"choices":[]}\n\n'.repeat(50_000);
  const crOnly = 'data: {"choices":[]}\r\r'.repeat(50_000);
  const started = performance.now();
  assert.equal(createSseParser().push(lines).length, 50_000);
  assert.equal(createSseParser().push(crOnly).length, 50_000);
  const parser = createSseParser({ maxEventChars: 4_000_000 });
  parser.push('data: ');
  for (let i = 0; i < 200_000; i++) parser.push('0123456789');
  assert.equal(parser.push('\n\n')[0]!.data.length, 2_000_000);
  assert.ok(performance.now() - started < 3000);
});

test('formatted events parse back to themselves', () => {
  const events: SseEvent[] = [
    { data: CHUNK_2 },
    { event: 'conversation.response.done', data: '{"a":1}' },
    { data: 'one\ntwo\r\nthree' },
    { data: '' },
  ];
  const text = events.map((e) => formatSseEvent(e)).join('');
  assert.equal(formatSseEvent({ data: '[DONE]' }), 'data: [DONE]\n\n');
  assert.deepEqual(parseInPieces([text]), [
    events[0],
    events[1],
    { data: 'one\ntwo\nthree' },
    { data: '' },
  ]);
});

test('line breaks in an event name cannot inject fields', () => {
  const text = formatSseEvent({ event: 'x\ndata: injected', data: 'real' });
  assert.deepEqual(parseInPieces([text]), [{ event: 'xdata: injected', data: 'real' }]);
});

test('usage is read leniently from a chunk, its text, or a full answer', () => {
  const expected = { promptTokens: 12, completionTokens: 3, totalTokens: 15 };
  assert.deepEqual(parseChunkUsage(CHUNK_2), expected);
  assert.deepEqual(parseChunkUsage(JSON.parse(CHUNK_2)), expected);
  assert.deepEqual(
    parseChunkUsage({
      object: 'chat.completion',
      usage: { prompt_tokens: 5, completion_tokens: 2 },
    }),
    { promptTokens: 5, completionTokens: 2, totalTokens: 7 },
  );
  assert.deepEqual(parseChunkUsage({ usage: { prompt_tokens: 4, total_tokens: 'x' } }), {
    promptTokens: 4,
    completionTokens: null,
    totalTokens: 4,
  });
});

test('chunks without usable usage give null', () => {
  assert.equal(parseChunkUsage(CHUNK_1), null);
  assert.equal(parseChunkUsage('not json'), null);
  assert.equal(parseChunkUsage('[DONE]'), null);
  assert.equal(parseChunkUsage({ usage: { request_count: 1 } }), null);
  assert.equal(parseChunkUsage(null), null);
});
