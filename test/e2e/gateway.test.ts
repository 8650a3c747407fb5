import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mistral } from '@mistralai/mistralai';
import OpenAI from 'openai';
import { openSqliteKeyStore } from '../../src/keys/sqlite-store.js';
import { waitForAuditEvent } from '../support/audit-tail.js';
import { canaryUpstreamKey, findLeaks } from '../support/canary.js';
import { DEFAULT_REPLY, type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, type CliResult, runCli, startGatewayProcess } from '../support/processes.js';

const UPSTREAM_KEY = canaryUpstreamKey();

let mock: MockMistral;
let gateway: Child;
let dir: string;
let dataDir: string;
let appKey: string;
let revokedKey: string;
let expiredKey: string;
let revokedId: string;
let expiredId: string;
/** Requests sent to the gateway's API (not /healthz): each must leave one audit event. */
let sent = 0;
const cliOutputs: CliResult[] = [];
const errorBodies: string[] = [];

async function cli(args: string[]): Promise<CliResult> {
  const result = await runCli([...args, '--data-dir', dataDir], { cwd: dir });
  cliOutputs.push(result);
  return result;
}

async function call(path: string, init: RequestInit & { key?: string | null } = {}) {
  const headers = new Headers(init.headers);
  const key = init.key === undefined ? appKey : init.key;
  if (key !== null) headers.set('authorization', `Bearer ${key}`);
  if (init.body && !headers.has('content-type')) headers.set('content-type', 'application/json');
  sent++;
  const res = await fetch(gateway.url + path, { ...init, headers });
  const text = await res.text();
  if (res.status >= 400) errorBodies.push(text);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

function chat(model: string, content: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({ model, messages: [{ role: 'user', content }], ...extra });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mg-e2e-'));
  dataDir = join(dir, 'data');
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
  await writeFile(
    join(dir, 'mistral-guard.yaml'),
    [
      'upstream:',
      // Fault after fault is this suite's point: the circuit breaker, tested on its own, stays off.
      '  breakerThreshold: 0',
      '  firstByteTimeoutMs: 1500',
      '  idleTimeoutMs: 1500',
      'profiles:',
      '  development:',
      '    maxBodyBytes: 65536',
      '    maxTokens: 2000',
      "    passThrough: ['/v1/files']",
      '',
    ].join('\n'),
  );
  const created = await cli([
    'keys',
    'create',
    '--name',
    'billing',
    '--models',
    'mistral-small-latest,mistral-embed,codestral-latest',
    '--max-tokens',
    '1000',
    '--json',
  ]);
  assert.equal(created.code, 0, created.stderr);
  appKey = JSON.parse(created.stdout).key;
  const revoked = JSON.parse((await cli(['keys', 'create', '--name', 'old', '--json'])).stdout);
  revokedKey = revoked.key;
  revokedId = revoked.id;
  assert.equal((await cli(['keys', 'revoke', revoked.id])).code, 0);
  const store = openSqliteKeyStore(dataDir);
  const expired = await store.create({
    name: 'expired',
    environment: 'development',
    expiresAt: new Date(Date.now() - 60_000).toISOString(),
  });
  expiredKey = expired.key;
  expiredId = expired.record.id;
  await store.close();

  gateway = await startGatewayProcess({
    dataDir,
    upstreamUrl: mock.url,
    cwd: dir,
    env: { MISTRAL_API_KEY: UPSTREAM_KEY, MISTRAL_GUARD_ENV: 'development' },
  });
});

after(async () => {
  await gateway?.stop();
  await mock?.close();
});

describe('clients through the gateway', () => {
  test('the official Mistral SDK completes a chat, and the upstream sees only the real key', async () => {
    const client = new Mistral({ apiKey: appKey, serverURL: gateway.url });
    sent++;
    const answer = await client.chat.complete({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content: 'Say hello' }],
    });
    assert.equal(answer.choices[0]?.message?.content, DEFAULT_REPLY);
    assert.ok((answer.usage?.totalTokens ?? 0) > 0);
    const last = mock.requests.at(-1)!;
    assert.equal(last.authorization, `Bearer ${UPSTREAM_KEY}`);
  });

  test('the official Mistral SDK streams a chat chunk by chunk with usage at the end', async () => {
    const client = new Mistral({ apiKey: appKey, serverURL: gateway.url });
    sent++;
    const stream = await client.chat.stream({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content: 'Stream it [[chunk:5]]' }],
    });
    let text = '';
    let chunks = 0;
    let usage: unknown;
    for await (const event of stream) {
      chunks++;
      const delta = event.data.choices[0]?.delta?.content;
      if (typeof delta === 'string') text += delta;
      if (event.data.usage) usage = event.data.usage;
    }
    assert.equal(text, DEFAULT_REPLY);
    assert.ok(chunks > 3, `expected several chunks, got ${chunks}`);
    assert.ok(usage);
  });

  test('the official Mistral SDK creates embeddings', async () => {
    const client = new Mistral({ apiKey: appKey, serverURL: gateway.url });
    sent++;
    const answer = await client.embeddings.create({ model: 'mistral-embed', inputs: ['a', 'b'] });
    assert.equal(answer.data.length, 2);
  });

  test('the openai SDK completes, streams and embeds through the gateway', async () => {
    const client = new OpenAI({ apiKey: appKey, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    sent++;
    const answer = await client.chat.completions.create({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content: 'Hello' }],
    });
    assert.equal(answer.choices[0]?.message.content, DEFAULT_REPLY);
    sent++;
    const stream = await client.chat.completions.create({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content: 'Hello [[chunk:4]]' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, DEFAULT_REPLY);
    sent++;
    const embeddings = await client.embeddings.create({ model: 'mistral-embed', input: 'hello' });
    assert.equal(embeddings.data.length, 1);
  });

  test('the model list shows only the models the key may use', async () => {
    const res = await call('/v1/models');
    assert.equal(res.status, 200);
    const ids = (res.json.data as Array<{ id: string; aliases?: string[] }>).map((m) => [
      m.id,
      ...(m.aliases ?? []),
    ]);
    assert.ok(ids.length > 0);
    for (const names of ids) {
      assert.ok(
        names.some((n) =>
          ['mistral-small-latest', 'mistral-embed', 'codestral-latest'].includes(n),
        ),
        `unexpected model ${names.join(',')}`,
      );
    }
    const denied = await call('/v1/models/mistral-large-latest');
    assert.equal(denied.status, 403);
    assert.equal(denied.json.code, 'model_not_allowed');
  });

  test('a pass-through path listed by the profile is forwarded with the real key', async () => {
    const res = await call('/v1/files');
    assert.equal(res.status, 200);
    assert.equal(mock.requests.at(-1)?.authorization, `Bearer ${UPSTREAM_KEY}`);
  });
});

describe('refusals', () => {
  const cases: Array<[string, () => ReturnType<typeof call>, number, string, string | null]> = [
    ['no key', () => call('/v1/models', { key: null }), 401, 'missing_api_key', null],
    ['a malformed key', () => call('/v1/models', { key: 'mg_nope' }), 401, 'invalid_api_key', null],
    [
      'an unknown well-formed key',
      async () => {
        const created = await cli(['keys', 'create', '--name', 'tmp', '--json']);
        const { key, id } = JSON.parse(created.stdout);
        const other = `${key.slice(0, 10)}${key[10] === 'A' ? 'B' : 'A'}${key.slice(11)}`;
        await cli(['keys', 'revoke', id]);
        return call('/v1/models', { key: other });
      },
      401,
      'invalid_api_key',
      null,
    ],
    ['a revoked key', () => call('/v1/models', { key: revokedKey }), 401, 'revoked_api_key', null],
    ['an expired key', () => call('/v1/models', { key: expiredKey }), 401, 'expired_api_key', null],
    [
      'a model the key may not use',
      () =>
        call('/v1/chat/completions', { method: 'POST', body: chat('mistral-large-latest', 'hi') }),
      403,
      'model_not_allowed',
      'model',
    ],
    [
      'max_tokens over the key cap',
      () =>
        call('/v1/chat/completions', {
          method: 'POST',
          body: chat('mistral-small-latest', 'hi', { max_tokens: 5000 }),
        }),
      400,
      'max_tokens_exceeded',
      'max_tokens',
    ],
    [
      'a body with a wrong field type',
      () =>
        call('/v1/chat/completions', {
          method: 'POST',
          body: JSON.stringify({
            model: 'mistral-small-latest',
            messages: [
              { role: 'user', content: 'a' },
              { role: 'assistant', content: 'b' },
              { role: 'user', content: 42 },
            ],
          }),
        }),
      400,
      'invalid_request',
      'messages[2].content',
    ],
    [
      'an unknown field',
      () =>
        call('/v1/chat/completions', {
          method: 'POST',
          body: chat('mistral-small-latest', 'hi', { stream_options: { include_usage: true } }),
        }),
      400,
      'invalid_request',
      'stream_options',
    ],
    [
      'invalid JSON',
      () => call('/v1/chat/completions', { method: 'POST', body: '{"model": ' }),
      400,
      'invalid_json',
      null,
    ],
    [
      'a body over the profile limit',
      () =>
        call('/v1/chat/completions', {
          method: 'POST',
          body: chat('mistral-small-latest', 'x'.repeat(70_000)),
        }),
      413,
      'body_too_large',
      null,
    ],
    [
      'a wrong content type',
      () =>
        call('/v1/chat/completions', {
          method: 'POST',
          body: chat('mistral-small-latest', 'hi'),
          headers: { 'content-type': 'text/plain' },
        }),
      415,
      'unsupported_media_type',
      null,
    ],
    [
      'an endpoint that is not allowed',
      () => call('/v1/batch/jobs', { method: 'GET' }),
      403,
      'endpoint_not_allowed',
      null,
    ],
    [
      'a path dressed up as an inspected endpoint',
      () =>
        call('/v1/chat/../chat/completions/', {
          method: 'POST',
          body: chat('mistral-large-latest', 'hi'),
        }),
      403,
      'endpoint_not_allowed',
      null,
    ],
  ];
  for (const [name, run, status, code, param] of cases) {
    test(`${name} is refused with ${status} ${code}`, async () => {
      const before = mock.requests.length;
      const res = await run();
      assert.equal(res.status, status, res.text);
      assert.equal(res.json.object, 'error');
      assert.equal(res.json.code, code);
      assert.equal(typeof res.json.request_id, 'string');
      if (param) assert.equal(res.json.param, param);
      assert.equal(mock.requests.length, before, 'nothing reached the upstream');
    });
  }

  test('a refused body names every offending field', async () => {
    const res = await call('/v1/chat/completions', {
      method: 'POST',
      body: JSON.stringify({
        model: 'mistral-small-latest',
        messages: [{ role: 'robot' }],
        n: 'x',
      }),
    });
    assert.equal(res.status, 400);
    const paths = (res.json.issues as Array<{ path: string }>).map((i) => i.path);
    assert.ok(paths.includes('messages[0].role'), paths.join(','));
    assert.ok(paths.includes('n'), paths.join(','));
  });

  test('the SDK sees a refused model as a 403 error', async () => {
    const client = new Mistral({ apiKey: appKey, serverURL: gateway.url });
    sent++;
    await assert.rejects(
      client.chat.complete({
        model: 'mistral-large-latest',
        messages: [{ role: 'user', content: 'x' }],
      }),
      (error: { statusCode?: number }) => error.statusCode === 403,
    );
  });

  test('a model named in the query string or a duplicate key cannot pass the allow-list', async () => {
    const viaQuery = await call('/v1/chat/completions?model=mistral-large-latest', {
      method: 'POST',
      body: chat('mistral-small-latest', 'hi'),
    });
    assert.equal(viaQuery.status, 200);
    const forwarded = mock.requests.at(-1)!;
    assert.equal(forwarded.path, '/v1/chat/completions');
    assert.equal((forwarded.body as { model: string }).model, 'mistral-small-latest');

    const duplicateLast = await call('/v1/chat/completions', {
      method: 'POST',
      body: '{"model":"mistral-small-latest","messages":[{"role":"user","content":"x"}],"model":"mistral-large-latest"}',
    });
    assert.equal(duplicateLast.status, 403);
    assert.equal(duplicateLast.json.code, 'model_not_allowed');

    const duplicateFirst = await call('/v1/chat/completions', {
      method: 'POST',
      body: '{"model":"mistral-large-latest","messages":[{"role":"user","content":"x"}],"model":"mistral-small-latest"}',
    });
    assert.equal(duplicateFirst.status, 200);
    assert.equal((mock.requests.at(-1)!.body as { model: string }).model, 'mistral-small-latest');
    const raw = JSON.stringify(mock.requests.at(-1)!.body);
    assert.ok(
      !raw.includes('mistral-large-latest'),
      'the refused model never reaches the upstream',
    );
  });

  test('a request without max_tokens gets the key cap', async () => {
    const res = await call('/v1/chat/completions', {
      method: 'POST',
      body: chat('mistral-small-latest', 'hi'),
    });
    assert.equal(res.status, 200);
    assert.equal((mock.requests.at(-1)!.body as { max_tokens: number }).max_tokens, 1000);
  });
});

describe('upstream faults', () => {
  const faults: Array<[string, number, string]> = [
    ['500', 502, 'upstream_error'],
    ['reset', 502, 'upstream_error'],
    ['hang', 504, 'upstream_timeout'],
    ['malformed', 502, 'upstream_error'],
    ['stream-cut', 502, 'upstream_error'],
  ];
  for (const [mode, status, code] of faults) {
    test(`an upstream ${mode} gives the client a clean ${status}`, async () => {
      const res = await call('/v1/chat/completions', {
        method: 'POST',
        body: chat('mistral-small-latest', `hi [[fault:${mode}]]`),
      });
      assert.equal(res.status, status, res.text);
      assert.equal(res.json.code, code);
      assert.ok(!res.text.includes('127.0.0.1'), 'the upstream address is not shown');
      assert.ok(!/at .*\.(js|ts):\d+/.test(res.text), 'no stack');
    });
  }

  test('an upstream 429 is relayed with its Retry-After', async () => {
    const res = await call('/v1/chat/completions', {
      method: 'POST',
      body: chat('mistral-small-latest', 'hi [[fault:429]]'),
    });
    assert.equal(res.status, 429);
    assert.ok(res.headers.get('retry-after'));
  });

  for (const mode of ['stream-cut', 'stream-stall', 'reset', '500']) {
    test(`a streamed answer hit by ${mode} ends with an error the client can see`, async () => {
      const res = await call('/v1/chat/completions', {
        method: 'POST',
        body: chat('mistral-small-latest', `hi [[fault:${mode}]] [[chunk:3]]`, { stream: true }),
      });
      assert.ok(!res.text.includes('data: [DONE]'), 'an incomplete stream never says [DONE]');
      if (res.status === 200) assert.match(res.text, /"code":"upstream_(error|timeout)"/);
      else assert.ok(res.status === 502 || res.status === 504, String(res.status));
    });
  }
});

describe('streams and probes', () => {
  test('a client that leaves mid-stream aborts the upstream call and is audited as client_closed', async () => {
    const abort = new AbortController();
    sent++;
    const res = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${appKey}`, 'content-type': 'application/json' },
      body: chat('mistral-small-latest', 'hi [[fault:stream-stall]]', { stream: true }),
      signal: abort.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /^data: /);
    abort.abort();
    const events = await waitForAudit((e) => e.errorCode === 'client_closed');
    assert.equal(events.status, 499);
    assert.equal(events.stream, true);
  });

  test('the health and readiness probes answer without a key', async () => {
    const health = await fetch(`${gateway.url}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${gateway.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { status: string }).status, 'ready');
  });
});

function waitForAudit(match: (e: Record<string, unknown>) => boolean) {
  return waitForAuditEvent({ dataDir, cwd: dir }, match);
}

describe('audit trail and secrets', () => {
  test('attempts with a revoked or expired key are recorded under that key', async () => {
    for (const [key, id, name, code] of [
      [revokedKey, revokedId, 'old', 'revoked_api_key'],
      [expiredKey, expiredId, 'expired', 'expired_api_key'],
    ] as const) {
      const requestId = `refused-${name}`;
      const res = await call('/v1/models', { key, headers: { 'x-request-id': requestId } });
      assert.equal(res.status, 401);
      assert.equal(res.json.code, code);
      assert.ok(!res.text.includes(id), 'the refusal names the key to the caller');
      const event = await waitForAudit((e) => e.requestId === requestId);
      assert.equal(event.keyId, id);
      assert.equal(event.keyName, name);
      assert.equal(event.errorCode, code);
    }
  });

  test('keys pasted into a user agent reach neither the upstream nor the audit trail', async () => {
    const before = mock.requests.length;
    const res = await call('/v1/chat/completions', {
      method: 'POST',
      body: chat('mistral-small-latest', 'Say hello'),
      headers: {
        'user-agent': `app/1.0 (key=${appKey}; upstream=${UPSTREAM_KEY})`,
        'x-request-id': 'ua-with-keys',
      },
    });
    assert.equal(res.status, 200);
    const forwarded = String(mock.requests.slice(before).at(-1)?.headers['user-agent']);
    assert.match(forwarded, /^app\/1\.0 \(key=\[REDACTED:VIRTUAL_KEY\]/);
    assert.ok(!forwarded.includes(appKey), 'the virtual key was forwarded upstream');
    assert.ok(!forwarded.includes(UPSTREAM_KEY), 'the upstream key was forwarded in a header');
    const event = await waitForAudit((e) => e.requestId === 'ua-with-keys');
    const stored = String(event.userAgent);
    assert.ok(!stored.includes(appKey), 'the virtual key is in the audit trail');
    assert.ok(!stored.includes(UPSTREAM_KEY), 'the upstream key is in the audit trail');
    assert.match(stored, /upstream=\[REDACTED:UPSTREAM_KEY\]/);
  });

  test('every request left exactly one audit event, with no key or prompt in it', async () => {
    // Events of streamed answers are written before [DONE]; give in-flight writes a moment.
    const tail = await cli(['audit', 'tail', '-n', '1000', '--json']);
    assert.equal(tail.code, 0, tail.stderr);
    // Key management by the CLI is audited too; the count here is of API requests.
    const events = tail.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => !e.action.startsWith('admin.'));
    assert.equal(events.length, sent);
    assert.equal(new Set(events.map((e) => e.requestId)).size, events.length);
    const refusedModel = events.find((e) => e.errorCode === 'model_not_allowed');
    assert.equal(refusedModel.status, 403);
    assert.ok(events.some((e) => e.errorCode === 'missing_api_key'));
    const ok = events.find((e) => e.action === 'chat.complete' && e.status === 200);
    assert.equal(ok.keyName, 'billing');
    assert.ok(ok.totalTokens > 0);
    assert.ok(!tail.stdout.includes('Say hello'), 'no prompt text in the audit trail');
  });

  test('neither the upstream key nor a virtual key appears in logs, audit rows, errors or CLI output', async () => {
    await gateway.stop();
    const files: Record<string, string> = {};
    for (const name of await readdir(dataDir)) {
      files[`data/${name}`] = (await readFile(join(dataDir, name))).toString('latin1');
    }
    const places = {
      ...files,
      gatewayStdout: gateway.stdout.join('\n'),
      gatewayStderr: gateway.stderr.join('\n'),
      errorBodies: errorBodies.join('\n'),
      // The create output is the one place a key is printed on purpose.
      cli: cliOutputs
        .filter((r) => !r.stdout.includes('"key"'))
        .map((r) => r.stdout + r.stderr)
        .join('\n'),
    };
    assert.ok(places.gatewayStdout.length > 0, 'the gateway logged something to check');
    assert.deepEqual(findLeaks(UPSTREAM_KEY, places), []);
    for (const key of [appKey, revokedKey, expiredKey])
      assert.deepEqual(findLeaks(key, places), []);
    const upstreamSaw = JSON.stringify(mock.requests);
    assert.ok(!upstreamSaw.includes(appKey), 'the upstream never receives the virtual key');
  });
});
