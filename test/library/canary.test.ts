/**
 * The upstream key never shows up where the library writes or throws: errors (message, stack,
 * causes, every field), log lines, audit events and the answers of guarded web routes. The key
 * is random per run, so finding it anywhere means the library put it there.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { inspect } from 'node:util';
import Fastify from 'fastify';
import { pino } from 'pino';
import {
  type Config,
  createGuardedClient,
  type GuardedMistral,
  guardedRequestOf,
  loadConfig,
  mistralGuardFastify,
  toSdkRequest,
} from '../../src/index.js';
import { canaryUpstreamKey, findLeaks } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';

const UPSTREAM_KEY = canaryUpstreamKey();
const MODEL = 'mistral-small-latest';

let mock: MockMistral;
let dir: string;
let config: Config;
let client: GuardedMistral;
const logLines: string[] = [];
const auditEvents: unknown[] = [];
const thrown: unknown[] = [];
const answers: string[] = [];

const logger = pino(
  { level: 'trace' },
  new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  }),
);
const audit = {
  async record(event: unknown) {
    auditEvents.push(event);
  },
};

const ask = (content: string, extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  messages: [{ role: 'user' as const, content }],
  ...extra,
});

/** Runs a call that may fail and keeps whatever it threw. */
async function attempt(run: () => Promise<unknown>): Promise<void> {
  try {
    const result = await run();
    if (result && typeof result === 'object' && Symbol.asyncIterator in result) {
      for await (const _ of result as AsyncIterable<unknown>) {
        // Read to the end, where a stream's failures surface.
      }
    }
  } catch (error) {
    thrown.push(error);
  }
}

/** Everything an error carries, as a developer printing or serialising it would see. */
function describeError(error: unknown): string {
  let json = '';
  try {
    json = JSON.stringify(error);
  } catch {
    // Circular: inspect below still shows every field.
  }
  const stack = error instanceof Error ? String(error.stack) : '';
  return [String(error), stack, json, inspect(error, { depth: 20, showHidden: true })].join('\n');
}

before(async () => {
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
  dir = await mkdtemp(join(tmpdir(), 'mg-lib-canary-'));
  config = await loadConfig({
    cwd: dir,
    env: { MISTRAL_API_KEY: UPSTREAM_KEY, MISTRAL_BASE_URL: mock.url },
    requireUpstreamKey: true,
  });
  client = await createGuardedClient({ config, audit, logger });
});

after(async () => {
  await client?.close();
  await mock?.close();
});

test('the guarded client leaks the key nowhere, whatever happens to a call', async () => {
  await attempt(() => client.chat.complete(ask('hello')));
  await attempt(() => client.chat.complete(ask('hello', { temperature: 7 })));
  await attempt(() => client.chat.complete(ask(`my key is ${UPSTREAM_KEY}`)));
  await attempt(() => client.chat.complete({ ...ask('hello'), messages: 'x' } as never));
  for (const mode of ['500', 'malformed', 'reset'] as const) {
    mock.setFault({ mode, count: 1 });
    await attempt(() => client.chat.complete(ask('hello')));
  }
  mock.setFault({ mode: 'stream-cut', count: 1 });
  await attempt(() => client.chat.stream(ask('[[reply:one two three four five six]]')));
  await attempt(() => client.chat.stream(ask(`[[reply:it is ${UPSTREAM_KEY}]] [[chunk:7]]`)));
  mock.setValidKeys([]);
  await attempt(() => client.chat.complete(ask('hello')));
  await attempt(() => client.models.list());
  mock.setValidKeys([UPSTREAM_KEY]);
  await attempt(() => client.files.list());

  const port = await closedPort();
  const offline = await createGuardedClient({
    config: { ...config, upstream: { ...config.upstream, baseUrl: `http://127.0.0.1:${port}` } },
    audit,
    logger,
  });
  await attempt(() => offline.chat.complete(ask('hello')));
  await offline.close();

  assert.ok(thrown.length >= 9, `only ${thrown.length} calls failed`);
  assert.ok(auditEvents.length >= 10);
  assertNoLeak();
});

test('guarded web routes leak the key nowhere either', async () => {
  const app = Fastify();
  await app.register(mistralGuardFastify, { client });
  app.post('/api/chat', { config: { mistralGuard: 'chat' } }, async (request) => {
    const { body, client: bound } = guardedRequestOf(request, 'chat');
    return bound!.chat.complete(toSdkRequest('chat.complete', body));
  });
  const bodies = [
    ask('hello'),
    ask('hello', { temperature: 7 }),
    ask(`my key is ${UPSTREAM_KEY}`),
    { messages: UPSTREAM_KEY },
  ];
  for (const payload of bodies) {
    const res = await app.inject({ method: 'POST', url: '/api/chat', payload });
    answers.push(res.body);
  }
  mock.setFault({ mode: '500', count: 1 });
  answers.push((await app.inject({ method: 'POST', url: '/api/chat', payload: ask('hi') })).body);
  await app.close();
  assert.ok(answers.some((a) => a.includes('internal_error')));
  assertNoLeak();
});

test('a configuration error never prints the key, even pasted in the wrong field', async () => {
  const path = join(dir, 'mistral-guard.yaml');
  await writeFile(path, `upstream:\n  baseUrl: ${UPSTREAM_KEY}\nlog:\n  level: ${UPSTREAM_KEY}\n`);
  try {
    await loadConfig({ cwd: dir, env: {} });
    assert.fail('the configuration loaded');
  } catch (error) {
    const text = `${describeError(error)}\n${(error as { format(): string }).format()}`;
    assert.deepEqual(findLeaks(UPSTREAM_KEY, { error: text }), []);
  }
});

function assertNoLeak(): void {
  const places: Record<string, string> = {
    logs: logLines.join(''),
    audit: JSON.stringify(auditEvents),
    answers: answers.join('\n'),
  };
  thrown.forEach((error, i) => {
    places[`error ${i}`] = describeError(error);
  });
  // The prompts above carry the key on purpose; what is checked is what the library wrote.
  assert.deepEqual(findLeaks(UPSTREAM_KEY, places), []);
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
