import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { Mistral } from '@mistralai/mistralai';
import { MistralError } from '@mistralai/mistralai/models/errors';
import OpenAI from 'openai';
import {
  DEFAULT_REPLY,
  estimateTokens,
  type MockMistral,
  type MockMistralOptions,
  startMockMistral,
} from './mock-mistral.js';
import { spawnServer } from './processes.js';

const KEY = 'test-upstream-key-not-real';
const MODEL = 'mistral-small-latest';

async function withMock(t: TestContext, options: MockMistralOptions = {}): Promise<MockMistral> {
  const mock = await startMockMistral({ validKeys: [KEY], ...options });
  t.after(() => mock.close());
  return mock;
}

function post(mock: MockMistral, path: string, body: unknown, key = KEY): Promise<Response> {
  return fetch(mock.url + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function chat(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: MODEL, messages: [{ role: 'user', content }], ...extra };
}

// The data payloads of an SSE body, `[DONE]` included.
function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice('data: '.length));
}

async function readUntilError(res: Response): Promise<{ text: string; error: unknown }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, error: undefined };
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    return { text, error };
  }
}

test('the Mistral SDK gets the default reply and usage at four characters a token', async (t) => {
  const mock = await withMock(t);
  const client = new Mistral({ apiKey: KEY, serverURL: mock.url });
  const messages = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'Say hello to the tests.' },
  ];
  const res = await client.chat.complete({ model: MODEL, messages });
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.model, MODEL);
  assert.equal(res.choices[0]?.message?.content, DEFAULT_REPLY);
  assert.equal(res.choices[0]?.finishReason, 'stop');
  const prompt = estimateTokens('Be brief.Say hello to the tests.');
  const completion = estimateTokens(DEFAULT_REPLY);
  assert.deepEqual(
    [res.usage.promptTokens, res.usage.completionTokens, res.usage.totalTokens],
    [prompt, completion, prompt + completion],
  );
  assert.equal(mock.requests[0]?.authorization, `Bearer ${KEY}`);
  assert.deepEqual(mock.requests[0]?.body, { model: MODEL, stream: false, messages });
});

test('the Mistral SDK streams a role event then content, usage on the last one', async (t) => {
  const mock = await withMock(t);
  const client = new Mistral({ apiKey: KEY, serverURL: mock.url });
  const stream = await client.chat.stream({
    model: MODEL,
    messages: [{ role: 'user', content: 'Hi' }],
  });
  const events = [];
  for await (const event of stream) events.push(event.data);
  assert.deepEqual(events[0]?.choices[0]?.delta, { role: 'assistant', content: '' });
  const content = events.map((e) => e.choices[0]?.delta.content ?? '').join('');
  assert.equal(content, DEFAULT_REPLY);
  assert.ok(events.length > 2, 'the default reply comes in several pieces');
  const last = events.at(-1)!;
  assert.equal(last.choices[0]?.finishReason, 'stop');
  assert.equal(last.usage?.completionTokens, estimateTokens(DEFAULT_REPLY));
  assert.equal(last.usage?.promptTokens, 1);
  for (const e of events.slice(0, -1)) {
    assert.equal(e.usage, undefined);
    assert.equal(e.choices[0]?.finishReason, null);
  }
});

test('the Mistral SDK parses embeddings, FIM, moderation, OCR and model lists', async (t) => {
  const mock = await withMock(t);
  const client = new Mistral({ apiKey: KEY, serverURL: mock.url });

  const emb = await client.embeddings.create({ model: 'mistral-embed', inputs: ['one', 'two'] });
  assert.equal(emb.data.length, 2);
  assert.equal(emb.data[1]?.index, 1);
  assert.equal(emb.data[0]?.embedding?.length, 8);
  assert.notDeepEqual(emb.data[0]?.embedding, emb.data[1]?.embedding);
  assert.equal(emb.usage.promptTokens, estimateTokens('onetwo'));
  assert.equal(emb.usage.completionTokens, 0);

  const fim = await client.fim.complete({
    model: 'codestral-latest',
    prompt: 'def f(',
    suffix: ')',
  });
  assert.equal(fim.choices[0]?.message?.content, DEFAULT_REPLY);
  assert.equal(fim.usage.promptTokens, estimateTokens('def f()'));

  const mod = await client.classifiers.moderate({
    model: 'mistral-moderation-latest',
    inputs: ['fine', 'my passport number [[flag:pii]]'],
  });
  assert.equal(mod.results[0]?.categories?.pii, false);
  assert.equal(mod.results[1]?.categories?.pii, true);
  assert.ok((mod.results[1]?.categoryScores?.pii ?? 0) > 0.5);

  const ocr = await client.ocr.process({
    model: 'mistral-ocr-latest',
    document: { type: 'document_url', documentUrl: 'https://example.invalid/a.pdf' },
    pages: [0, 1],
  });
  assert.deepEqual(
    ocr.pages.map((p) => p.index),
    [0, 1],
  );
  assert.equal(ocr.usageInfo.pagesProcessed, 2);

  const models = await client.models.list();
  const large = models.data?.find((m) => m.type === 'base' && m.id === 'mistral-large-latest');
  assert.ok(large && large.type === 'base');
  assert.equal(large.capabilities.completionChat, true);
  assert.deepEqual(large.aliases, ['mistral-large-2512']);
});

test('the OpenAI SDK parses chat answers, chat streams and base64 embeddings', async (t) => {
  const mock = await withMock(t);
  const openai = new OpenAI({ apiKey: KEY, baseURL: `${mock.url}/v1`, maxRetries: 0 });
  const messages = [{ role: 'user' as const, content: 'Hello there' }];

  const res = await openai.chat.completions.create({ model: MODEL, messages });
  assert.equal(res.choices[0]?.message.content, DEFAULT_REPLY);
  assert.equal(res.usage?.prompt_tokens, estimateTokens('Hello there'));

  const stream = await openai.chat.completions.create({ model: MODEL, messages, stream: true });
  let content = '';
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    content += chunk.choices[0]?.delta.content ?? '';
    usage = chunk.usage ?? usage;
  }
  assert.equal(content, DEFAULT_REPLY);
  assert.equal(usage?.total_tokens, estimateTokens('Hello there') + estimateTokens(DEFAULT_REPLY));

  const emb = await openai.embeddings.create({ model: 'mistral-embed', input: 'one' });
  const client = new Mistral({ apiKey: KEY, serverURL: mock.url });
  const floats = await client.embeddings.create({ model: 'mistral-embed', inputs: 'one' });
  const sent = mock.requests.at(-2)?.body as { encoding_format?: string } | undefined;
  assert.equal(sent?.encoding_format, 'base64');
  const expected = floats.data[0]?.embedding ?? [];
  const decoded = emb.data[0]?.embedding ?? [];
  assert.equal(decoded.length, expected.length);
  for (const [i, x] of decoded.entries()) assert.ok(Math.abs(x - expected[i]!) < 1e-6);
});

test('directives echo, reply verbatim and size stream pieces; max_tokens cuts', async (t) => {
  const mock = await withMock(t);
  const text = async (body: unknown) => {
    const json = (await (await post(mock, '/v1/chat/completions', body)).json()) as {
      choices: { message: { content: string }; finish_reason: string }[];
    };
    return [json.choices[0]!.message.content, json.choices[0]!.finish_reason];
  };
  assert.deepEqual(await text(chat('[[echo]] repeat me')), ['repeat me', 'stop']);
  assert.deepEqual(await text(chat('x [[reply: exactly [this] ]] y')), [
    ' exactly [this] ',
    'stop',
  ]);
  assert.deepEqual(await text(chat('hi', { max_tokens: 2 })), [
    DEFAULT_REPLY.slice(0, 8),
    'length',
  ]);

  const res = await post(
    mock,
    '/v1/chat/completions',
    chat('[[reply:abcdefghij]][[chunk:4]]', { stream: true }),
  );
  const data = sseData(await res.text());
  assert.equal(data.at(-1), '[DONE]');
  const pieces = data.slice(1, -1).map((d) => JSON.parse(d).choices[0].delta.content);
  assert.deepEqual(pieces, ['abcd', 'efgh', 'ij']);
});

test('an unknown key gets 401 and the accepted keys can be swapped at run time', async (t) => {
  const mock = await withMock(t);
  const client = new Mistral({ apiKey: 'test-wrong-key', serverURL: mock.url });
  await assert.rejects(
    client.chat.complete({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }),
    (err: unknown) => err instanceof MistralError && err.statusCode === 401,
  );
  const res = await post(mock, '/v1/chat/completions', chat('x'), 'test-wrong-key');
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), { detail: 'Unauthorized' });

  mock.setValidKeys(['test-wrong-key']);
  assert.equal((await post(mock, '/v1/chat/completions', chat('x'), 'test-wrong-key')).status, 200);
  assert.equal((await post(mock, '/v1/chat/completions', chat('x'))).status, 401);
  assert.equal(mock.requests.length, 4, 'refused requests are recorded too');
});

test('unparseable JSON and a missing model get 422 in the live nested shape', async (t) => {
  const mock = await withMock(t);
  const bad = await post(mock, '/v1/chat/completions', '{"model":');
  assert.equal(bad.status, 422);
  const badBody = (await bad.json()) as { object: string; message: { detail: { type: string }[] } };
  assert.equal(badBody.object, 'error');
  assert.equal(badBody.message.detail[0]?.type, 'json_invalid');
  assert.equal(mock.requests[0]?.body, '{"model":');

  const missing = await post(mock, '/v1/embeddings', { input: 'x' });
  assert.equal(missing.status, 422);
  const detail = ((await missing.json()) as { message: { detail: { loc: unknown[] }[] } }).message
    .detail[0];
  assert.deepEqual(detail?.loc, ['body', 'model']);

  const agent = await post(mock, '/v1/agents/completions', { messages: [] });
  assert.equal(agent.status, 422, 'agents completions need agent_id, not model');
});

test('unknown paths and models get 404 errors and file listings are empty', async (t) => {
  const mock = await withMock(t);
  const auth = { authorization: `Bearer ${KEY}` };
  const nowhere = await fetch(`${mock.url}/v1/nowhere`, { headers: auth });
  assert.equal(nowhere.status, 404);
  assert.equal(((await nowhere.json()) as { object: string }).object, 'error');
  assert.equal((await fetch(`${mock.url}/v1/models/no-such-model`, { headers: auth })).status, 404);
  const alias = await fetch(`${mock.url}/v1/models/codestral-2508`, { headers: auth });
  assert.equal(((await alias.json()) as { id: string }).id, 'codestral-latest');
  const files = await fetch(`${mock.url}/v1/files?page=0`, { headers: auth });
  assert.deepEqual(await files.json(), { object: 'list', data: [], total: 0 });
  assert.equal(mock.requests.at(-1)?.path, '/v1/files?page=0');
  assert.equal((await fetch(`${mock.url}/v1/chat/completions`, { headers: auth })).status, 405);
});

test('answers carry live-like rate-limit, Kong and cookie headers', async (t) => {
  const mock = await withMock(t);
  const res = await post(mock, '/v1/chat/completions', chat('hi'));
  await res.text();
  for (const name of [
    'x-ratelimit-limit-req-minute',
    'x-ratelimit-remaining-req-minute',
    'x-ratelimit-limit-tokens-minute',
    'x-ratelimit-remaining-tokens-minute',
  ]) {
    assert.match(res.headers.get(name) ?? '', /^\d+$/, name);
  }
  assert.match(res.headers.get('x-kong-request-id') ?? '', /^[0-9a-f]{32}$/);
  assert.match(res.headers.get('set-cookie') ?? '', /Domain=\.mistral\.ai/);
  const stream = await post(mock, '/v1/chat/completions', chat('hi', { stream: true }));
  assert.equal(stream.headers.get('content-type'), 'text/event-stream');
  await stream.text();
});

test('a 500 fault answers an error body, status picks 502-504, count limits it', async (t) => {
  const mock = await withMock(t);
  mock.setFault({ mode: '500', count: 2 });
  const first = await post(mock, '/v1/chat/completions', chat('x'));
  assert.equal(first.status, 500);
  assert.equal(((await first.json()) as { type: string }).type, 'server_error');
  assert.equal((await post(mock, '/v1/embeddings', { model: 'e', input: 'x' })).status, 500);
  assert.equal((await post(mock, '/v1/chat/completions', chat('x'))).status, 200);

  mock.setFault({ mode: '500', status: 503 });
  assert.equal((await post(mock, '/v1/chat/completions', chat('x'))).status, 503);
  assert.equal((await post(mock, '/v1/chat/completions', chat('x'), 'test-wrong-key')).status, 401);
  mock.setFault(null);
  assert.equal((await post(mock, '/v1/chat/completions', chat('x'))).status, 200);
});

test('a 429 fault sends Retry-After and the live body, also when a prompt asks', async (t) => {
  const mock = await withMock(t);
  mock.setFault({ mode: '429', retryAfterSeconds: 7, count: 1 });
  const res = await post(mock, '/v1/chat/completions', chat('x'));
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '7');
  assert.equal(res.headers.get('x-ratelimit-remaining-req-minute'), '0');
  assert.deepEqual(await res.json(), {
    object: 'error',
    message: 'Rate limit exceeded',
    type: 'rate_limited',
    param: null,
    code: '1300',
  });
  const steered = await post(mock, '/v1/chat/completions', chat('x [[fault:429:3]]'));
  assert.equal(steered.status, 429);
  assert.equal(steered.headers.get('retry-after'), '3');
  assert.equal((await post(mock, '/v1/chat/completions', chat('[[fault:504]]'))).status, 504);
  assert.equal((await post(mock, '/v1/chat/completions', chat('x'))).status, 200);
});

test('a reset fault drops the connection before any answer', async (t) => {
  const mock = await withMock(t);
  mock.setFault({ mode: 'reset', count: 1 });
  await assert.rejects(post(mock, '/v1/chat/completions', chat('x')), TypeError);
  assert.equal(mock.requests.length, 1, 'the request was read before the reset');
  assert.equal((await post(mock, '/v1/chat/completions', chat('x'))).status, 200);
});

test('a malformed fault answers 200 JSON that does not parse', async (t) => {
  const mock = await withMock(t);
  const res = await post(mock, '/v1/chat/completions', chat('[[fault:malformed]]'));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  await assert.rejects(res.json(), SyntaxError);
});

test('a stream-cut fault sends the first events then breaks the connection', async (t) => {
  const mock = await withMock(t);
  const res = await post(
    mock,
    '/v1/chat/completions',
    chat('[[fault:stream-cut]]', { stream: true }),
  );
  assert.equal(res.status, 200);
  const { text, error } = await readUntilError(res);
  assert.ok(error, 'reading the stream fails');
  const data = sseData(text);
  assert.ok(data.length >= 1);
  assert.ok(!text.includes('[DONE]'));
  assert.equal(JSON.parse(data[0]!).choices[0].delta.role, 'assistant');

  mock.setFault({ mode: 'stream-cut', count: 1 });
  const plain = await post(mock, '/v1/chat/completions', chat('x'));
  assert.equal(plain.status, 200);
  await assert.rejects(plain.text());
});

test('a stream-stall fault sends the first event and then nothing', async (t) => {
  const mock = await withMock(t);
  const controller = new AbortController();
  const res = await fetch(`${mock.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}` },
    body: JSON.stringify(chat('[[fault:stream-stall]]', { stream: true })),
    signal: controller.signal,
  });
  const reader = res.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  assert.equal(sseData(first).length, 1);
  const next = reader.read();
  const stalled = await Promise.race([
    next.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(resolve, 200, true)),
  ]);
  assert.ok(stalled, 'no second event within 200 ms');
  controller.abort();
  await assert.rejects(next);
});

test('a slow-first-byte fault delays the whole answer by delayMs', async (t) => {
  const mock = await withMock(t);
  mock.setFault({ mode: 'slow-first-byte', delayMs: 250 });
  const started = performance.now();
  const res = await post(mock, '/v1/chat/completions', chat('x'));
  assert.ok(performance.now() - started >= 240);
  assert.equal(((await res.json()) as { object: string }).object, 'chat.completion');
  const listed = performance.now();
  await (
    await fetch(`${mock.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } })
  ).text();
  assert.ok(performance.now() - listed >= 240, 'the fault applies to every path');
});

test('a hang fault never answers until the client gives up', async (t) => {
  const mock = await withMock(t);
  mock.setFault({ mode: 'hang' });
  const res = fetch(`${mock.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}` },
    body: JSON.stringify(chat('x')),
    signal: AbortSignal.timeout(200),
  });
  await assert.rejects(res, { name: 'TimeoutError' });
  assert.equal(mock.requests.length, 1);
});

test('close() ends hung and delayed requests promptly and leaves no timers behind', async () => {
  const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const mock = await startMockMistral({ streamChunkDelayMs: 10_000 });
  // Outcomes are captured at once: the rejections happen inside close(), before any assert.
  const settle = (p: Promise<unknown>) =>
    p.then(
      () => 'answered',
      () => 'failed',
    );
  const hung = settle(post(mock, '/v1/chat/completions', chat('[[fault:hang]]')));
  const slow = settle(post(mock, '/v1/chat/completions', chat('[[fault:slow-first-byte:10000]]')));
  const dripping = await post(mock, '/v1/chat/completions', chat('x', { stream: true }));
  const dripped = settle(dripping.text());
  while (mock.requests.length < 3) await new Promise((r) => setTimeout(r, 5));
  const started = performance.now();
  await mock.close();
  assert.ok(performance.now() - started < 500, 'close() did not wait for the requests');
  assert.deepEqual(await Promise.all([hung, slow, dripped]), ['failed', 'failed', 'failed']);
  const timersAfter = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  assert.ok(timersAfter <= timersBefore, `${timersAfter - timersBefore} timers left`);
});

test('stream events are paced by streamChunkDelayMs', async (t) => {
  const mock = await withMock(t, { streamChunkDelayMs: 40 });
  const started = performance.now();
  const res = await post(
    mock,
    '/v1/chat/completions',
    chat('[[reply:a b c d e f]]', { stream: true }),
  );
  const data = sseData(await res.text());
  // role event, two pieces of three words, [DONE]: three pauses between four events
  assert.equal(data.length, 4);
  assert.ok(performance.now() - started >= 110);
});

test('recording can be switched off for benchmarks', async (t) => {
  const mock = await withMock(t, { record: false });
  await (await post(mock, '/v1/chat/completions', chat('x'))).text();
  assert.equal(mock.requests.length, 0);
});

test('the server can answer over TLS with a given key and certificate', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mock-mistral-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  try {
    await promisify(execFile)('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1'],
      ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    ]);
  } catch {
    t.skip('openssl is not available to make a certificate');
    return;
  }
  const key = await readFile(join(dir, 'key.pem'), 'utf8');
  const cert = await readFile(join(dir, 'cert.pem'), 'utf8');
  const mock = await withMock(t, { tls: { key, cert } });
  assert.match(mock.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const body = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest(`${mock.url}/v1/models`, {
      ca: cert,
      headers: { authorization: `Bearer ${KEY}` },
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => {
        text += c;
      });
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal((JSON.parse(body) as { object: string }).object, 'list');
});

test('the CLI prints its URL, serves requests and exits cleanly on SIGTERM', async () => {
  const child = await spawnServer(process.execPath, [
    ...['--import', 'tsx', 'test/support/mock-mistral-cli.ts', '--port', '0'],
    ...['--valid-key', KEY],
  ]);
  try {
    const res = await fetch(`${child.url}/v1/models`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    assert.equal(res.status, 200);
    await res.text();
    const refused = await fetch(`${child.url}/v1/models`);
    assert.equal(refused.status, 401);
    await refused.text();
  } finally {
    assert.equal(await child.stop('SIGTERM'), 0);
  }
});
