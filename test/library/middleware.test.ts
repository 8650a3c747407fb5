import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { type AuditEvent, toAuditRecord } from '../../src/audit/event.js';
import type { Config } from '../../src/config/load.js';
import {
  createGuardedClient,
  type GuardedMistral,
  guardedRequestOf,
  loadConfig,
  mistralGuardExpress,
  mistralGuardFastify,
  toSdkRequest,
} from '../../src/index.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';

const UPSTREAM_KEY = canaryUpstreamKey();
const CARD = '4111 1111 1111 1111';
const SECRET = `sk-proj-${randomBytes(36).toString('base64url')}`;
const MODEL = 'mistral-small-latest';

let mock: MockMistral;
let config: Config;
let client: GuardedMistral;
let app: FastifyInstance;
const events: AuditEvent[] = [];

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  messages: [{ role: 'user', content }],
  ...extra,
});

before(async () => {
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
  const dir = await mkdtemp(join(tmpdir(), 'mg-middleware-'));
  await writeFile(
    join(dir, 'mistral-guard.yaml'),
    ['profiles:', '  development:', '    maxBodyBytes: 2048', ''].join('\n'),
  );
  config = await loadConfig({
    cwd: dir,
    env: { MISTRAL_API_KEY: UPSTREAM_KEY, MISTRAL_BASE_URL: mock.url },
  });
  const audit = {
    async record(event: Parameters<typeof toAuditRecord>[0]) {
      events.push(toAuditRecord(event));
    },
  };
  client = await createGuardedClient({ config, audit });

  app = Fastify();
  await app.register(mistralGuardFastify, {
    client,
    userId: (request) => (request.headers['x-user-id'] as string | undefined) ?? null,
  });
  app.post('/api/echo', { config: { mistralGuard: 'chat' } }, async (request) => {
    const { body, context } = guardedRequestOf(request, 'chat');
    return { body, context };
  });
  app.post('/api/chat', { config: { mistralGuard: true } }, async (request) => {
    const { body, client: bound } = guardedRequestOf(request, 'chat');
    const answer = await bound!.chat.complete(toSdkRequest('chat.complete', body));
    return { reply: answer.choices[0]?.message?.content };
  });
  app.post('/api/broken', { config: { mistralGuard: 'chat' } }, async () => {
    throw new Error('database password is hunter2');
  });
  app.post('/api/open', async (request) => ({ got: request.body }));
});

after(async () => {
  await app?.close();
  await client?.close();
  await mock?.close();
});

function post(url: string, payload: unknown, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, payload: payload as object, headers });
}

describe('the Fastify plugin', () => {
  test('a valid body reaches the handler checked, with its audit context', async () => {
    const res = await post('/api/echo', chat('hello'), { 'x-user-id': 'ada' });
    assert.equal(res.statusCode, 200, res.body);
    const { body, context } = res.json();
    assert.equal(body.max_tokens, 8192);
    assert.equal(context.userId, 'ada');
    assert.equal(context.clientIp, '127.0.0.1');
    assert.equal(context.requestId, res.json().context.requestId);
  });

  test('an invalid body is answered 400 with every field, and audited for the user', async () => {
    const res = await post('/api/echo', chat('hi', { temperature: 9, top_k: 3 }), {
      'x-user-id': 'ada',
    });
    assert.equal(res.statusCode, 400);
    const body = res.json();
    assert.equal(body.code, 'invalid_request');
    assert.deepEqual(
      body.issues.map((i: { path: string }) => i.path),
      ['temperature', 'top_k'],
    );
    assert.equal(res.headers['x-request-id'], body.request_id);
    const event = events.at(-1)!;
    assert.equal(event.requestId, body.request_id);
    assert.equal(event.keyId, 'user:ada');
    assert.equal(event.path, '/api/echo');
    assert.equal(event.errorCode, 'invalid_request');
  });

  test('a blocked value is answered 400 without the value', async () => {
    const res = await post('/api/echo', chat(`use ${SECRET}`));
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().code, 'sensitive_data_blocked');
    assert.equal(res.json().param, 'messages[0].content');
    assert.ok(!res.body.includes(SECRET.slice(8)));
  });

  test("bodies that cannot be read get the gateway's codes", async () => {
    const broken = await app.inject({
      method: 'POST',
      url: '/api/echo',
      payload: '{"messages":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(broken.statusCode, 400);
    assert.equal(broken.json().code, 'invalid_json');
    assert.equal(events.at(-1)?.action, 'chat.complete');
    const text = await app.inject({
      method: 'POST',
      url: '/api/echo',
      payload: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(text.statusCode, 415);
    assert.equal(text.json().code, 'unsupported_media_type');
    const large = await post('/api/echo', chat('x'.repeat(4096)));
    assert.equal(large.statusCode, 413);
    assert.equal(large.json().code, 'body_too_large');
  });

  test('anything else a guarded route throws becomes a generic 500', async () => {
    const res = await post('/api/broken', chat('hello'));
    assert.equal(res.statusCode, 500);
    assert.equal(res.json().code, 'internal_error');
    assert.equal(res.json().message, 'Internal error.');
    assert.doesNotMatch(res.body, /hunter2/);
  });

  test('routes that do not opt in are left alone', async () => {
    const res = await post('/api/open', { anything: true });
    assert.deepEqual(res.json(), { got: { anything: true } });
  });

  test("the bound client's call is audited with the request's context and its redactions", async () => {
    const res = await post('/api/chat', chat(`[[echo]] card ${CARD}`), { 'x-user-id': 'bob' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().reply, 'card [REDACTED:CARD]');
    const event = events.at(-1)!;
    assert.equal(event.action, 'chat.complete');
    assert.equal(event.path, '/v1/chat/completions');
    assert.equal(event.keyId, 'user:bob');
    assert.equal(event.requestId, res.headers['x-request-id'] ?? event.requestId);
    assert.deepEqual(event.guard, {
      action: 'input:redact',
      findings: { 'input.payment_card': 1 },
    });
  });
});

describe('the Express middleware', () => {
  let server: Server;
  let url: string;

  before(async () => {
    const guard = mistralGuardExpress({
      client,
      userId: (req) => (req.headers['x-user-id'] as string | undefined) ?? null,
    });
    const web = express();
    web.post('/parsed', express.json(), guard, (req, res) => {
      res.json(guardedRequestOf(req));
    });
    web.post('/raw', guard, (req, res) => {
      res.json(guardedRequestOf(req));
    });
    web.post('/broken', express.json(), guard, () => {
      throw new Error('database password is hunter2');
    });
    web.use(guard.errorHandler);
    server = web.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server?.close();
  });

  async function send(path: string, body: string, headers: Record<string, string> = {}) {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    // biome-ignore lint/suspicious/noExplicitAny: answers are read as loose JSON
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  }

  test('a body parsed by express.json() passes checked, with its audit context', async () => {
    const res = await send('/parsed', JSON.stringify(chat('hello')), { 'x-request-id': 'r-1' });
    assert.equal(res.status, 200);
    assert.equal(res.json.body.max_tokens, 8192);
    assert.equal(res.json.context.requestId, 'r-1');
    assert.equal(res.json.context.clientIp, '127.0.0.1');
  });

  test('without a body parser the body is read within the profile limit', async () => {
    const ok = await send('/raw', JSON.stringify(chat('hello')), { 'x-user-id': 'ada' });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.context.userId, 'ada');
    const large = await send('/raw', JSON.stringify(chat('x'.repeat(4096))));
    assert.equal(large.status, 413);
    assert.equal(large.json.code, 'body_too_large');
    const broken = await send('/raw', '{"messages":');
    assert.equal(broken.json.code, 'invalid_json');
  });

  test('a refused body is answered 400 with its fields', async () => {
    const res = await send('/parsed', JSON.stringify(chat('hi', { n: 0 })));
    assert.equal(res.status, 400);
    assert.equal(res.json.code, 'invalid_request');
    assert.deepEqual(res.json.issues, [{ path: 'n', message: 'Too small: at least 1.' }]);
  });

  test('an error thrown after the middleware becomes a generic 500', async () => {
    const res = await send('/broken', JSON.stringify(chat('hello')));
    assert.equal(res.status, 500);
    assert.equal(res.json.code, 'internal_error');
    assert.doesNotMatch(JSON.stringify(res.json), /hunter2/);
  });

  test('the middleware needs a guarded client or a configuration', () => {
    assert.throws(() => mistralGuardExpress({}), TypeError);
    assert.doesNotThrow(() => mistralGuardExpress({ config }));
  });
});
