import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { auditTail } from '../support/audit-tail.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';

// Edge cases of the HTTP surface, against an upstream written here to misbehave in ways the
// Mistral-compatible test server does not: data after the stream terminator, broken model lists,
// error bodies with internals, and requests that never get an answer.
const UPSTREAM_KEY = canaryUpstreamKey();
const INTERNAL = 'db-replica-7.internal:5432 stack at Handler.run';

let upstream: Server;
let upstreamUrl: string;
let gateway: Child;
let dir: string;
let dataDir: string;
let key: string;
/** Bytes of pass-through bodies the upstream received, per request. */
const received: number[] = [];

/** A whole answer of the misbehaving upstream. */
interface Canned {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Canned => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/** Whole answers of the upstream, chosen by the path. */
const CANNED_BY_PATH: Record<string, Canned> = {
  '/v1/files/html-error': {
    status: 404,
    headers: { 'content-type': 'text/html' },
    body: '<html><body>Not here</body></html>',
  },
  '/v1/models/leaky-model': json(404, {
    message: `no model for ${UPSTREAM_KEY} (jane.doe@example.com)`,
  }),
  '/v1/models': json(200, { object: 'list', data: [null, 7, { id: 'mistral-small-latest' }] }),
};

/** Whole answers of the upstream, chosen by the prompt. */
const CANNED: Record<string, Canned> = {
  refuse: json(400, {
    object: 'error',
    message: 'Invalid model: nope',
    type: 'invalid_request_error',
    param: null,
    code: '1500',
    debug: INTERNAL,
  }),
  'refuse-pii': json(422, { object: 'error', message: 'bad value jane.doe@example.com' }),
  'html-403': {
    status: 403,
    headers: { 'content-type': 'text/html' },
    body: '<html><body>Forbidden by the edge</body></html>',
  },
  'text-429': {
    status: 429,
    headers: { 'content-type': 'text/plain', 'retry-after': '5' },
    body: 'slow down',
  },
  'quote-key': json(400, { object: 'error', message: `bad key ${UPSTREAM_KEY} here` }),
  'leak-internals': json(400, {
    message: `Error: boom\n    at Handler.run (/srv/app/src/index.js:10:5) via ${INTERNAL}`,
    param: 'http://10.0.0.7:8080/v1',
    code: 'E1',
  }),
  'quote-key-fields': json(
    422,
    { message: 'bad', param: UPSTREAM_KEY, code: 'jane.doe@example.com' },
    { 'retry-after': UPSTREAM_KEY },
  ),
  'answer-quote-key': json(200, {
    id: 'c1',
    object: 'chat.completion',
    model: UPSTREAM_KEY,
    choices: [
      { index: 0, message: { role: 'assistant', content: `I was called with ${UPSTREAM_KEY}` } },
    ],
  }),
};

function startUpstream(): Promise<void> {
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const byPath = Object.hasOwn(CANNED_BY_PATH, req.url ?? '') ? CANNED_BY_PATH[req.url!] : null;
      if (byPath) {
        res.writeHead(byPath.status, byPath.headers);
        res.end(byPath.body);
        return;
      }
      if (req.url?.startsWith('/v1/files')) {
        received.push(body.length);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
        return;
      }
      const prompt = JSON.parse(body.toString()).messages?.[0]?.content ?? '';
      const canned = Object.hasOwn(CANNED, prompt) ? CANNED[prompt] : null;
      if (canned) {
        res.writeHead(canned.status, canned.headers);
        res.end(canned.body);
        return;
      }
      if (prompt === 'escaped-key' || prompt === 'stream-escaped-key') {
        // The key with one character written as a JSON escape: the same string once parsed.
        const code = UPSTREAM_KEY.charCodeAt(5).toString(16).padStart(4, '0');
        const escaped = `${UPSTREAM_KEY.slice(0, 5)}\\u${code}${UPSTREAM_KEY.slice(6)}`;
        const content = `{"role":"assistant","content":"called with ${escaped}"}`;
        if (prompt === 'escaped-key') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":${content}}]}`,
          );
        } else {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(`data: {"id":"c1","choices":[{"index":0,"delta":${content}}]}\n\n`);
          res.end('data: [DONE]\n\n');
        }
        return;
      }
      if (prompt === 'stream-quote-key') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const error = { object: 'error', message: `key ${UPSTREAM_KEY} for jane.doe@example.com` };
        res.write(`data: ${JSON.stringify(error)}\n\n`);
        const nested = { error: { message: 'write to jane.doe@example.com' } };
        res.write(`event: error\ndata: ${JSON.stringify(nested)}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      if (prompt === 'hang') return; // never answers
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (content: string, finish: string | null) =>
        `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;
      res.write(chunk('Hello', null));
      res.write(chunk(' world', 'stop'));
      res.write('data: [DONE]\n\n');
      res.write(chunk(' smuggled', null));
      res.end('data: [DONE]\n\n');
    });
  });
  return new Promise((resolve) => {
    upstream.listen(0, '127.0.0.1', () => {
      const address = upstream.address() as { port: number };
      upstreamUrl = `http://127.0.0.1:${address.port}`;
      resolve();
    });
  });
}

async function cli(args: string[]) {
  return runCli([...args, '--data-dir', dataDir], { cwd: dir });
}

function auditEvents() {
  return auditTail({ dataDir, cwd: dir });
}

/** Sends raw bytes and returns what the gateway answered before closing. */
function raw(bytes: string | Buffer, { wait = 5000 } = {}): Promise<string> {
  const url = new URL(gateway.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => {
      answer += d;
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(wait, () => {
      socket.destroy();
      resolve(answer);
    });
    socket.write(bytes);
  });
}

function chat(content: string, extra: Record<string, unknown> = {}) {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content }],
      ...extra,
    }),
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mg-edges-'));
  dataDir = join(dir, 'data');
  await startUpstream();
  await writeFile(
    join(dir, 'mistral-guard.yaml'),
    [
      'audit: { clientIp: truncated }',
      'server:',
      '  headersTimeoutMs: 400',
      '  maxHeaderBytes: 4096',
      'profiles:',
      '  development:',
      '    maxBodyBytes: 100000',
      '    maxMessageChars: 100',
      "    passThrough: ['/v1/files']",
      '',
    ].join('\n'),
  );
  const created = await cli(['keys', 'create', '--name', 'edges', '--json']);
  assert.equal(created.code, 0, created.stderr);
  key = JSON.parse(created.stdout).key;
  gateway = await startGatewayProcess({
    dataDir,
    upstreamUrl,
    cwd: dir,
    env: { MISTRAL_API_KEY: UPSTREAM_KEY, MISTRAL_GUARD_ENV: 'development' },
  });
});

after(async () => {
  await gateway?.stop();
  await new Promise((resolve) => upstream?.close(resolve));
  upstream?.closeAllConnections();
});

describe('before routing', () => {
  test('a malformed request line gets a Mistral-shaped 400', async () => {
    const answer = await raw('GARBAGE\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 400 /);
    // Refused before routing, and still with the headers every answer carries.
    assert.match(answer, /\r\nx-content-type-options: nosniff\r\n/i);
    assert.match(answer, /\r\nstrict-transport-security: max-age=\d+/i);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    assert.equal(body.object, 'error');
    assert.equal(body.code, 'bad_request');
  });

  test('oversized headers get a Mistral-shaped 431', async () => {
    const answer = await raw(
      `GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 431 /);
    assert.match(answer, /"code":"headers_too_large"/);
  });

  test('a client that never finishes its headers is cut off', async () => {
    const started = Date.now();
    const answer = await raw('GET /v1/models HTTP/1.1\r\nHost: x\r\n', { wait: 10_000 });
    // Closed by the gateway well before the socket's own 10 s give-up.
    assert.ok(Date.now() - started < 9_000, 'the slow client was never cut off');
    if (answer !== '') assert.match(answer, /^HTTP\/1\.1 408 /);
  });
});

describe('pass-through bodies', () => {
  test('a chunked upload past the body limit is refused, not forwarded whole', async () => {
    const before = received.length;
    const big = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 10; i++)
          controller.enqueue(new TextEncoder().encode('x'.repeat(15_000)));
        controller.close();
      },
    });
    const res = await fetch(`${gateway.url}/v1/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
      body: big,
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { code: string }).code, 'body_too_large');
    const got = received.slice(before);
    assert.ok(
      got.every((n) => n <= 1000),
      `the upstream received ${got.join(', ')} bytes`,
    );
  });

  test('a chunked upload within the limit passes', async () => {
    const small = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('y'.repeat(300)));
        controller.close();
      },
    });
    const res = await fetch(`${gateway.url}/v1/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
      body: small,
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 200);
    assert.equal(received.at(-1), 300);
  });
});

describe('request bodies', () => {
  test('a deeply nested free-form field is a 400 naming where, not a crash', async () => {
    const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    const body = `{"model":"mistral-small-latest","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${deep}}}}`;
    const res = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body,
    });
    assert.equal(res.status, 400);
    const error = (await res.json()) as { code: string; param: string };
    assert.equal(error.code, 'invalid_request');
    assert.match(error.param, /^response_format\.json_schema\.schema\.a\.a/);
  });

  test('the message size limit counts a whole message, not each of its chunks', async () => {
    const res = await chat([
      { type: 'text', text: 'x'.repeat(60) },
      { type: 'text', text: 'y'.repeat(60) },
    ] as unknown as string);
    assert.equal(res.status, 400);
    const error = (await res.json()) as { code: string; param: string };
    assert.equal(error.param, 'messages[0]');
  });
});

describe('audit of what callers write', () => {
  test('a key pasted into a path is redacted in the audit trail', async () => {
    const pasted = `MISTRAL_API_KEY=${'Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z'}`;
    const res = await fetch(`${gateway.url}/v1/files/${pasted}`, {
      headers: { authorization: `Bearer ${key}`, 'x-request-id': 'pasted-path-1' },
    });
    await res.arrayBuffer();
    const event = (await auditEvents()).find((e) => e.requestId === 'pasted-path-1');
    assert.ok(event, 'no audit event');
    assert.ok(!String(event.path).includes('Ab3dEf6h'), `path stored: ${event.path}`);
    assert.match(String(event.path), /\[REDACTED:MISTRAL_KEY\]/);
    // This trail keeps client networks, not addresses.
    assert.equal(event.clientIp, '127.0.0.0');
  });
});

describe('upstream oddities', () => {
  test('nothing after the first [DONE] reaches the client, and the request is audited once', async () => {
    const res = await chat('stream please', { stream: true });
    const text = await res.text();
    assert.equal(text.match(/\[DONE\]/g)?.length, 1);
    assert.ok(!text.includes('smuggled'));
    const id = res.headers.get('x-request-id');
    const events = (await auditEvents()).filter((e) => e.requestId === id);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.status, 200);
  });

  test('a model list with broken entries is filtered, not a 500', async () => {
    const res = await fetch(`${gateway.url}/v1/models`, {
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { data: Array<{ id: string }> };
    assert.deepEqual(
      body.data.map((m: { id: string }) => m.id),
      ['mistral-small-latest'],
    );
  });

  test('an upstream 4xx keeps its meaning but only Mistral fields, with our request id', async () => {
    const res = await chat('refuse');
    assert.equal(res.status, 400);
    const text = await res.text();
    assert.ok(!text.includes(INTERNAL), 'upstream internals were relayed');
    const body = JSON.parse(text);
    assert.equal(body.message, 'Invalid model: nope');
    assert.equal(body.code, '1500');
    assert.equal(body.request_id, res.headers.get('x-request-id'));
  });

  test('an upstream 4xx that is not JSON keeps its status, as JSON, with one audit event', async () => {
    const cases: Array<[string, () => Promise<Response>, number]> = [
      ['html-403', () => chat('html-403'), 403],
      ['text-429', () => chat('text-429'), 429],
      [
        'pass-through html-404',
        () =>
          fetch(`${gateway.url}/v1/files/html-error`, {
            headers: { authorization: `Bearer ${key}` },
          }),
        404,
      ],
    ];
    for (const [name, send, status] of cases) {
      const res = await send();
      assert.equal(res.status, status, name);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/, name);
      const body = (await res.json()) as { object: string; request_id: string };
      assert.equal(body.object, 'error', name);
      const events = (await auditEvents()).filter((e) => e.requestId === body.request_id);
      assert.equal(events.length, 1, `${name}: ${events.length} audit events`);
      assert.equal(events[0]!.status, status, name);
    }
  });

  test('an upstream that quotes the gateway key in an error does not pass it on', async () => {
    const res = await chat('quote-key');
    assert.equal(res.status, 400);
    const text = await res.text();
    assert.ok(!text.includes(UPSTREAM_KEY), 'the upstream key reached the client');
    assert.match(text, /bad key \[REDACTED:UPSTREAM_KEY\] here/);

    const model = await fetch(`${gateway.url}/v1/models/leaky-model`, {
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(model.status, 404);
    const modelText = await model.text();
    assert.ok(!modelText.includes(UPSTREAM_KEY), 'the upstream key reached the client');
    assert.ok(!modelText.includes('jane.doe@example.com'), 'the model error was not redacted');
  });

  test('a secret in a model name or a pass-through path is refused, not forwarded', async () => {
    const model = await chat('hi', { model: key });
    assert.equal(model.status, 400);
    const modelBody = (await model.json()) as { code: string; param: string; message: string };
    assert.equal(modelBody.code, 'invalid_request');
    assert.equal(modelBody.param, 'model');
    assert.ok(!JSON.stringify(modelBody).includes(key), 'the refusal echoes the key');
    const glued = await chat('hi', { model: `mistral-small-${key}` });
    assert.equal(glued.status, 400, 'a key glued to a model name was forwarded');

    const before = received.length;
    const encoded = `${UPSTREAM_KEY.slice(0, 4)}%${UPSTREAM_KEY.charCodeAt(4).toString(16)}${UPSTREAM_KEY.slice(5)}`;
    for (const path of [
      `/v1/files/${UPSTREAM_KEY}`,
      `/v1/files/${encoded}`,
      `/v1/files?purpose=${encodeURIComponent(key)}`,
      '/v1/files/jane.doe@example.com',
    ]) {
      const res = await fetch(gateway.url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(res.status, 400, path);
      const body = (await res.json()) as { param: string };
      assert.equal(body.param, 'path', path);
    }
    assert.equal(received.length, before, 'a path holding a secret reached the upstream');
    const events = await auditEvents();
    const trail = JSON.stringify(events);
    assert.ok(!trail.includes(UPSTREAM_KEY) && !trail.includes(encoded), 'upstream key in trail');
  });

  test('an upstream error that shows its internals is passed on without them', async () => {
    const res = await chat('leak-internals');
    assert.equal(res.status, 400);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.message, 'The upstream API refused the request.');
    assert.equal(body.param, null);
    assert.equal(body.code, 'E1');
    assert.ok(!JSON.stringify(body).includes('/srv/app'), 'a file path reached the client');
  });

  test('the gateway key never comes back: error fields, answers, streams, headers', async () => {
    const fields = await chat('quote-key-fields');
    assert.equal(fields.status, 422);
    assert.equal(fields.headers.get('retry-after'), null, 'a malformed Retry-After was relayed');
    const fieldsText = await fields.text();
    assert.ok(!fieldsText.includes(UPSTREAM_KEY), 'the key came back in an error field');
    assert.ok(!fieldsText.includes('jane.doe@example.com'), 'an error field was not redacted');

    const answer = await chat('answer-quote-key');
    assert.equal(answer.status, 200);
    const answerText = await answer.text();
    assert.ok(!answerText.includes(UPSTREAM_KEY), 'the key came back in an answer');
    assert.match(answerText, /\[REDACTED:UPSTREAM_KEY\]/);

    for (const [prompt, stream] of [
      ['escaped-key', false],
      ['stream-escaped-key', true],
    ] as const) {
      const escapedAnswer = await chat(prompt, { stream });
      assert.equal(escapedAnswer.status, 200, prompt);
      const parsedText = (await escapedAnswer.text()).replace(/\\u([0-9a-f]{4})/gi, (_m, hex) =>
        String.fromCharCode(Number.parseInt(hex, 16)),
      );
      assert.ok(!parsedText.includes(UPSTREAM_KEY), `${prompt}: an escaped key came back`);
    }

    const stream = await chat('stream-quote-key', { stream: true });
    const streamText = await stream.text();
    assert.ok(!streamText.includes(UPSTREAM_KEY), 'the key came back in a stream');
    assert.ok(!streamText.includes('jane.doe@example.com'), 'an error event was not redacted');
    assert.match(streamText, /\[REDACTED:EMAIL\]/);
  });

  test('ids and names that hold a secret are replaced or refused, never forwarded', async () => {
    const asked = `req.${UPSTREAM_KEY}`;
    const res = await fetch(`${gateway.url}/v1/models`, {
      headers: { authorization: `Bearer ${key}`, 'x-request-id': asked },
    });
    const id = res.headers.get('x-request-id') ?? '';
    assert.notEqual(id, asked);
    assert.ok(!id.includes(UPSTREAM_KEY), 'a request id kept the upstream key');
    const plain = await fetch(`${gateway.url}/v1/models`, {
      headers: { authorization: `Bearer ${key}`, 'x-request-id': 'trace-42.a' },
    });
    assert.equal(plain.headers.get('x-request-id'), 'trace-42.a', 'a plain id was not kept');

    const agent = await fetch(`${gateway.url}/v1/agents/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agent_id: key, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(agent.status, 400);
    assert.equal(((await agent.json()) as { param: string }).param, 'agent_id');
  });

  test('pass-through queries are judged value by value; long paths are refused', async () => {
    const send = (path: string) =>
      fetch(gateway.url + path, { headers: { authorization: `Bearer ${key}` } });
    const before = received.length;
    assert.equal((await send('/v1/files?page_token=eyJvZmZzZXQiOjEwMH0&page=2')).status, 200);
    assert.equal(received.length, before + 1, 'a pagination token was refused');
    assert.equal((await send('/v1/files?purpose=4111+1111+1111+1111')).status, 400);
    assert.equal((await send(`/v1/files/${'a'.repeat(500)}${UPSTREAM_KEY}`)).status, 400);
    assert.equal(received.length, before + 1, 'a refused path reached the upstream');
  });

  test('a body compressed by its transfer coding is refused as unsupported', async () => {
    const before = received.length;
    const gz = gzipSync('{"purpose":"batch"}');
    const answer = await raw(
      Buffer.concat([
        Buffer.from(
          `POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n` +
            'Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n' +
            `Connection: close\r\n\r\n${gz.length.toString(16)}\r\n`,
        ),
        gz,
        Buffer.from('\r\n0\r\n\r\n'),
      ]),
    );
    assert.match(answer, /^HTTP\/1\.1 415 /);
    assert.match(answer, /"code":"unsupported_media_type"/);
    assert.equal(received.length, before);
  });

  test('a request the framework refuses still carries the security headers', async () => {
    const res = await fetch(`${gateway.url}/v1/files/%zz`, {
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=\d+/);
  });

  test('a body that is not an object is refused as a whole, with no empty field name', async () => {
    const res = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: '[]',
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { param: unknown; message: string };
    assert.equal(body.param, null);
    assert.match(body.message, /^The request body is not valid: the body: /);
  });

  test('a compressed request body is refused as unsupported, not read as broken JSON', async () => {
    const res = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      },
      body: gzipSync(JSON.stringify({ model: 'mistral-small-latest', messages: [] })),
    });
    assert.equal(res.status, 415);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, 'unsupported_media_type');
    assert.match(body.message, /Content-Encoding/);
  });

  test('an upstream error message is redacted like an answer', async () => {
    const res = await chat('refuse-pii');
    assert.equal(res.status, 422);
    const body = (await res.json()) as { message: string };
    assert.equal(body.message, 'bad value [REDACTED:EMAIL]');
  });

  test('a client that leaves before the upstream answers is audited as client_closed', async () => {
    const controller = new AbortController();
    const request = fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        'x-request-id': 'leaver-1',
      },
      body: JSON.stringify({
        model: 'mistral-small-latest',
        messages: [{ role: 'user', content: 'hang' }],
      }),
      signal: controller.signal,
    }).catch(() => null);
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    await request;
    let event: Record<string, unknown> | undefined;
    for (let i = 0; i < 40 && !event; i++) {
      event = (await auditEvents()).find((e) => e.requestId === 'leaver-1');
      if (!event) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(event, 'no audit event for the request');
    assert.equal(event.status, 499);
    assert.equal(event.errorCode, 'client_closed');
  });
});
