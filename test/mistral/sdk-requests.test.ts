/**
 * The official SDKs, run against a local server that records what they send: every body they
 * build must pass our strict schemas, or the gateway would refuse real clients.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Mistral } from '@mistralai/mistralai';
import OpenAI from 'openai';
import { ENDPOINTS } from '../../src/mistral/endpoints.js';
import { formatIssues } from '../../src/mistral/issues.js';
import { getSchemas } from '../../src/mistral/schemas.js';

interface Captured {
  path: string;
  body: unknown;
}

const USAGE = { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 };
const CHUNK = {
  id: 'c1',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'm',
  choices: [{ index: 0, delta: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  usage: USAGE,
};
const ANSWER = {
  id: 'c1',
  object: 'chat.completion',
  created: 1,
  model: 'm',
  usage: USAGE,
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  data: [{ object: 'embedding', embedding: [0.5], index: 0 }],
  results: [],
  pages: [],
  usage_info: { pages_processed: 0 },
};

let server: Server;
let origin = '';
let captured: Captured[] = [];

before(async () => {
  server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { stream?: boolean };
      captured.push({ path: req.url ?? '', body });
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`data: ${JSON.stringify(CHUNK)}\n\ndata: [DONE]\n\n`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ANSWER));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.close();
});

/** Runs one SDK call (its answer parsing may fail: only the request matters) and checks it. */
async function sent(call: () => Promise<unknown>): Promise<Captured> {
  captured = [];
  try {
    const result = await call();
    if (result && typeof result === 'object' && Symbol.asyncIterator in result) {
      for await (const _ of result as AsyncIterable<unknown>) {
        // Drain the stream so the request completes.
      }
    }
  } catch {
    // A response the SDK dislikes does not matter here.
  }
  assert.equal(captured.length, 1, 'the SDK sent one request');
  const request = captured[0]!;
  const endpoint = ENDPOINTS.find((e) => e.path === request.path);
  assert.ok(endpoint, `${request.path} is an inspected endpoint`);
  const result = getSchemas(false)[endpoint.schemaName].safeParse(request.body);
  assert.ok(
    result.success,
    `${request.path}: ${JSON.stringify(result.success ? [] : formatIssues(result.error))}`,
  );
  return request;
}

const conversation = [
  { role: 'system' as const, content: 'Be brief.' },
  { role: 'user' as const, content: 'What is the weather in Paris?' },
  {
    role: 'assistant' as const,
    content: '',
    toolCalls: [{ id: 'call_1', function: { name: 'weather', arguments: '{"city":"Paris"}' } }],
  },
  { role: 'tool' as const, content: '21C', toolCallId: 'call_1', name: 'weather' },
];
const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'weather',
    description: 'Current weather.',
    parameters: { type: 'object', properties: { city: { type: 'string' } } },
  },
};

test('the Mistral SDK chat.complete request passes', async () => {
  const m = new Mistral({ apiKey: 'test-key', serverURL: origin });
  await sent(() =>
    m.chat.complete({
      model: 'mistral-small-latest',
      messages: conversation,
      tools: [weatherTool],
      toolChoice: 'auto',
      temperature: 0.2,
      maxTokens: 100,
      responseFormat: { type: 'text' },
      safePrompt: true,
    }),
  );
});

test('the Mistral SDK chat.stream request passes and asks for a stream', async () => {
  const m = new Mistral({ apiKey: 'test-key', serverURL: origin });
  const request = await sent(() =>
    m.chat.stream({
      model: 'mistral-small-latest',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Describe this.' },
            { type: 'image_url', imageUrl: 'https://example.com/a.png' },
          ],
        },
      ],
    }),
  );
  assert.equal((request.body as { stream?: unknown }).stream, true);
});

test('the Mistral SDK embeddings, FIM and moderation requests pass', async () => {
  const m = new Mistral({ apiKey: 'test-key', serverURL: origin });
  await sent(() => m.embeddings.create({ model: 'mistral-embed', inputs: ['a', 'b'] }));
  await sent(() =>
    m.fim.complete({ model: 'codestral-latest', prompt: 'def add(a, b):', suffix: 'return c' }),
  );
  await sent(() => m.classifiers.moderate({ model: 'mistral-moderation-latest', inputs: ['x'] }));
});

test('the Mistral SDK agents, chat moderation, classification and OCR requests pass', async () => {
  const m = new Mistral({ apiKey: 'test-key', serverURL: origin });
  await sent(() => m.agents.complete({ agentId: 'ag_1', messages: conversation }));
  await sent(() =>
    m.classifiers.moderateChat({ model: 'mistral-moderation-latest', inputs: conversation }),
  );
  await sent(() =>
    m.classifiers.classifyChat({
      model: 'ft:classifier:abc',
      input: [{ messages: [{ role: 'user', content: 'hi' }] }],
    }),
  );
  await sent(() =>
    m.ocr.process({
      model: 'mistral-ocr-latest',
      document: { type: 'document_url', documentUrl: 'https://example.com/a.pdf' },
    }),
  );
});

test('the openai SDK chat completion requests pass, streamed or not', async () => {
  const o = new OpenAI({ apiKey: 'test-key', baseURL: `${origin}/v1` });
  const messages = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'What is the weather in Paris?' },
    {
      role: 'assistant' as const,
      content: null,
      tool_calls: [
        {
          id: 'call_1',
          type: 'function' as const,
          function: { name: 'weather', arguments: '{"city":"Paris"}' },
        },
      ],
    },
    { role: 'tool' as const, content: '21C', tool_call_id: 'call_1' },
  ];
  await sent(() =>
    o.chat.completions.create({
      model: 'mistral-small-latest',
      messages,
      tools: [weatherTool],
      max_tokens: 50,
      temperature: 0.5,
    }),
  );
  const request = await sent(() =>
    o.chat.completions.create({ model: 'mistral-small-latest', messages, stream: true }),
  );
  assert.equal((request.body as { stream?: unknown }).stream, true);
});

test('the openai SDK embeddings request passes with its default base64 encoding', async () => {
  const o = new OpenAI({ apiKey: 'test-key', baseURL: `${origin}/v1` });
  const request = await sent(() => o.embeddings.create({ model: 'mistral-embed', input: ['a'] }));
  assert.equal((request.body as { encoding_format?: unknown }).encoding_format, 'base64');
});

test('openai stream_options is refused, as Mistral refuses it', async () => {
  const o = new OpenAI({ apiKey: 'test-key', baseURL: `${origin}/v1` });
  captured = [];
  const stream = await o.chat.completions.create({
    model: 'mistral-small-latest',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const _ of stream) {
    // Drain the stream so the request completes.
  }
  const result = getSchemas(false).ChatCompletionRequest.safeParse(captured[0]!.body);
  assert.equal(result.success, false);
  assert.deepEqual(formatIssues(result.error!), [
    { path: 'stream_options', message: 'Unknown field.' },
  ]);
  assert.ok(getSchemas(true).ChatCompletionRequest.safeParse(captured[0]!.body).success);
});
