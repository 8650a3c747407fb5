import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mistral } from '@mistralai/mistralai';
import {
  ConnectionError,
  MistralError,
  SDKValidationError,
} from '@mistralai/mistralai/models/errors';
import { type AuditEvent, toAuditRecord } from '../../src/audit/event.js';
import type { Config } from '../../src/config/load.js';
import {
  ConfigError,
  createGuardedClient,
  type GuardedMistral,
  isGuardError,
  loadConfig,
} from '../../src/index.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { DEFAULT_REPLY, type MockMistral, startMockMistral } from '../support/mock-mistral.js';

const UPSTREAM_KEY = canaryUpstreamKey();
const MODEL = 'mistral-small-latest';

let mock: MockMistral;
let config: Config;
let client: GuardedMistral;
const events: AuditEvent[] = [];
const audit = {
  async record(event: Parameters<typeof toAuditRecord>[0]) {
    events.push(toAuditRecord(event));
  },
};

const ask = (content: string) => ({ model: MODEL, messages: [{ role: 'user' as const, content }] });

before(async () => {
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
  const dir = await mkdtemp(join(tmpdir(), 'mg-client-'));
  await writeFile(
    join(dir, 'mistral-guard.yaml'),
    [
      'environments: [development, one-a-minute, one-at-a-time]',
      'profiles:',
      '  development:',
      "    passThrough: ['/v1/files']",
      '  one-a-minute:',
      '    limits: { rpm: 1 }',
      '  one-at-a-time:',
      '    limits: { concurrency: 1 }',
      '',
    ].join('\n'),
  );
  config = await loadConfig({
    cwd: dir,
    env: { MISTRAL_API_KEY: UPSTREAM_KEY, MISTRAL_BASE_URL: mock.url },
  });
  client = await createGuardedClient({ config, audit });
});

after(async () => {
  await client?.close();
  await mock?.close();
});

function lastEvent(): AuditEvent {
  const event = events.at(-1);
  assert.ok(event, 'no audit event');
  return event;
}

describe('building a guarded client', () => {
  test('an existing client keeps its own key and server URL', async () => {
    const own = new Mistral({ apiKey: UPSTREAM_KEY, serverURL: mock.url });
    const noKey = { ...config, upstreamKeys: {} };
    const wrapped = await createGuardedClient({ client: own, config: noKey });
    try {
      const answer = await wrapped.chat.complete(ask('hello'));
      assert.equal(answer.choices[0]?.message?.content, DEFAULT_REPLY);
      assert.equal(mock.requests.at(-1)?.authorization, `Bearer ${UPSTREAM_KEY}`);
    } finally {
      await wrapped.close();
    }
  });

  test('without a client or an upstream key, creation fails with a configuration error', async () => {
    await assert.rejects(
      createGuardedClient({ config: { ...config, upstreamKeys: {} } }),
      (error: unknown) =>
        error instanceof ConfigError && /no upstream Mistral key/.test(error.problems[0]!.message),
    );
  });

  test('an environment without a profile is a configuration error', async () => {
    await assert.rejects(
      createGuardedClient({ config, environment: 'nowhere' }),
      (error: unknown) => error instanceof ConfigError && error.problems[0]!.path === 'environment',
    );
  });
});

describe('calls', () => {
  test('a refusal rejects with a GuardError and never reaches the upstream', async () => {
    const before = mock.requests.length;
    await assert.rejects(
      client.chat.complete({ ...ask('hello'), maxTokens: 100_000 }),
      (error: unknown) => isGuardError(error, 'max_tokens_exceeded') && error.status === 400,
    );
    assert.equal(mock.requests.length, before);
    assert.equal(lastEvent().errorCode, 'max_tokens_exceeded');
  });

  test('a request the SDK itself cannot build fails as in the SDK, before anything is sent', async () => {
    const before = events.length;
    const broken = { model: MODEL, messages: 'hello' } as unknown as ReturnType<typeof ask>;
    await assert.rejects(client.chat.complete(broken), SDKValidationError);
    assert.equal(events.length, before, 'a request never built was audited');
  });

  test('withContext records the user, address and request id on the audit event', async () => {
    const view = client.withContext({
      userId: 'ada',
      clientIp: '203.0.113.7',
      requestId: 'req-42',
      userAgent: 'chat-app/1.0',
    });
    await view.chat.complete(ask('hello'));
    const event = lastEvent();
    assert.equal(event.requestId, 'req-42');
    assert.equal(event.keyId, 'user:ada');
    assert.equal(event.clientIp, '203.0.113.7');
    assert.equal(event.userAgent, 'chat-app/1.0');
    assert.equal(event.action, 'chat.complete');
    assert.equal(event.success, true);
  });

  test('limits count per user: one user at its limit does not stop another', async () => {
    const limited = await createGuardedClient({ config, environment: 'one-a-minute', audit });
    try {
      await limited.withContext({ userId: 'a' }).chat.complete(ask('hello'));
      await assert.rejects(
        limited.withContext({ userId: 'a' }).chat.complete(ask('hello')),
        (error: unknown) => isGuardError(error, 'rate_limited') && error.status === 429,
      );
      await limited.withContext({ userId: 'b' }).chat.complete(ask('hello'));
    } finally {
      await limited.close();
    }
  });

  test('model listings pass; other paths pass only where the profile lets them through', async () => {
    const models = await client.models.list();
    assert.ok((models.data?.length ?? 0) > 0);
    assert.equal(lastEvent().action, 'models.list');
    const files = await client.files.list();
    assert.equal(files.total, 0);
    assert.equal(lastEvent().action, 'passthrough');
    const strict = await createGuardedClient({ config, environment: 'one-at-a-time' });
    try {
      await assert.rejects(strict.files.list(), (error: unknown) =>
        isGuardError(error, 'endpoint_not_allowed'),
      );
    } finally {
      await strict.close();
    }
  });
});

describe('upstream failures', () => {
  test('an upstream error keeps the SDK error type and is audited', async () => {
    mock.setFault({ mode: '500', count: 1 });
    await assert.rejects(
      client.chat.complete(ask('hello')),
      (error: unknown) => error instanceof MistralError && error.statusCode === 500,
    );
    const event = lastEvent();
    assert.equal(event.errorCode, 'upstream_error');
    assert.equal(event.upstreamStatus, 500);
  });

  test('a refused upstream key is audited as such', async () => {
    mock.setValidKeys([]);
    try {
      await assert.rejects(
        client.chat.complete(ask('hello')),
        (error: unknown) => error instanceof MistralError && error.statusCode === 401,
      );
      assert.equal(lastEvent().errorCode, 'upstream_auth_failed');
    } finally {
      mock.setValidKeys([UPSTREAM_KEY]);
    }
  });

  test('an unreachable upstream keeps the SDK ConnectionError and is audited', async () => {
    const closed = await freePort();
    const cfg = {
      ...config,
      upstream: { ...config.upstream, baseUrl: `http://127.0.0.1:${closed}` },
    };
    const offline = await createGuardedClient({ config: cfg, audit });
    try {
      await assert.rejects(offline.chat.complete(ask('hello')), ConnectionError);
      assert.equal(lastEvent().errorCode, 'upstream_unavailable');
    } finally {
      await offline.close();
    }
  });

  test('a stream cut before [DONE] fails with upstream_error after the text it had', async () => {
    mock.setFault({ mode: 'stream-cut', count: 1 });
    let text = '';
    await assert.rejects(
      (async () => {
        const stream = await client.chat.stream(ask('[[reply:one two three four five six]]'));
        for await (const event of stream) text += event.data?.choices[0]?.delta.content ?? '';
      })(),
      (error: unknown) => isGuardError(error, 'upstream_error'),
    );
    assert.ok(text.length < 'one two three four five six'.length);
    assert.equal(lastEvent().errorCode, 'upstream_error');
  });

  test('a caller that stops reading a stream frees its slot, audited as client_closed', async () => {
    const single = await createGuardedClient({ config, environment: 'one-at-a-time', audit });
    try {
      // The upstream sends one event and then nothing: only the caller can end the stream.
      mock.setFault({ mode: 'stream-stall', count: 1 });
      const stream = await single.chat.stream(ask('[[reply:one two three four five six]]'));
      for await (const _ of stream) break;
      assert.equal(lastEvent().errorCode, 'client_closed');
      const answer = await single.chat.complete(ask('again'));
      assert.equal(answer.choices[0]?.message?.content, DEFAULT_REPLY);
    } finally {
      await single.close();
    }
  });
});

/** A port nothing listens on: bound once, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
