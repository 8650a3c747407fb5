/**
 * One table of requests, each sent twice: through the official SDK to a real gateway process,
 * and through the guarded client straight to the loopback upstream. Both must take the same
 * decision: the same error code, status, field and message, the same body forwarded upstream,
 * the same answer, and audit events that agree on what the guard found and did.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Mistral } from '@mistralai/mistralai';
import { MistralError } from '@mistralai/mistralai/models/errors';
import { type AuditEvent, toAuditRecord } from '../../src/audit/event.js';
import { isGuardError } from '../../src/errors.js';
import { createGuardedClient, type GuardedMistral, loadConfig } from '../../src/index.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';

const UPSTREAM_KEY = canaryUpstreamKey();
const CARD = '4111 1111 1111 1111';
const EMAIL = 'jane.doe@example.com';
const SECRET = `sk-proj-${randomBytes(36).toString('base64url')}`;
const MODEL = 'mistral-small-latest';
const ENVIRONMENTS = ['development', 'staging', 'tight'] as const;
type Env = (typeof ENVIRONMENTS)[number];

// biome-ignore lint/suspicious/noExplicitAny: audit events are read back as loose JSON
type Json = Record<string, any>;

/** What one side did with a request. */
interface Outcome {
  ok: boolean;
  answer?: unknown;
  status?: number;
  code?: string;
  param?: string | null;
  message?: string;
  issues?: unknown;
  /** The body the upstream received, or null when nothing reached it. */
  forwarded: unknown;
}

interface Case {
  name: string;
  env: Env;
  /** Makes the call with the SDK's own arguments; returns what the answer says. */
  call(client: Mistral, options: { headers: Record<string, string> }): Promise<unknown>;
  /** Calls made first, with the same client, whose outcome is not compared. */
  warmUp?: number;
}

const ask = (content: string, extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  messages: [{ role: 'user' as const, content }],
  ...extra,
});

const complete =
  (request: ReturnType<typeof ask>): Case['call'] =>
  async (client, options) => {
    const answer = await client.chat.complete(request, options);
    return answer.choices[0]?.message?.content;
  };

/**
 * Reads a stream to its end. A stream the guard stops ends with an error on both sides, of the
 * SDK's making at a gateway (an SSE error event) and a GuardError here: both count as stopped,
 * and the audit events tell why.
 */
const streamed =
  (request: ReturnType<typeof ask>): Case['call'] =>
  async (client, options) => {
    let text = '';
    try {
      for await (const event of await client.chat.stream(request, options)) {
        text += event.data?.choices[0]?.delta.content ?? '';
      }
    } catch {
      return { text, stopped: true };
    }
    return { text, stopped: false };
  };

const CASES: Case[] = [
  {
    name: 'an allowed chat is forwarded with max_tokens set to the cap',
    env: 'development',
    call: complete(ask('[[echo]] hello there')),
  },
  {
    name: 'a model outside the policy is refused',
    env: 'development',
    call: complete({ ...ask('hello'), model: 'mistral-large-latest' }),
  },
  {
    name: 'a credential pasted as the model name is refused, not sent',
    env: 'development',
    call: complete({ ...ask('hello'), model: SECRET }),
  },
  {
    name: 'max_tokens over the cap is refused',
    env: 'development',
    call: complete(ask('hello', { maxTokens: 1000 })),
  },
  {
    name: 'an invalid field is refused with its path',
    env: 'development',
    call: complete(ask('hello', { temperature: 3, topP: 0 })),
  },
  {
    name: 'a card number is blocked where personal data is blocked',
    env: 'staging',
    call: complete(ask(`charge my card ${CARD} please`)),
  },
  {
    name: 'a card number is redacted where personal data is redacted',
    env: 'development',
    call: complete(ask(`[[echo]] charge my card ${CARD} please`)),
  },
  {
    name: 'a credential is blocked',
    env: 'development',
    call: complete(ask(`deploy with ${SECRET}`)),
  },
  {
    name: 'an answer is redacted',
    env: 'development',
    call: complete(ask(`[[reply:write to ${EMAIL} today]]`)),
  },
  {
    name: 'an answer is redacted in a stream, across chunks',
    env: 'development',
    call: streamed(ask(`[[reply:write to ${EMAIL} today]] [[chunk:3]]`)),
  },
  {
    name: 'a credential in a streamed answer stops the stream where answers block secrets',
    env: 'staging',
    call: streamed(ask(`[[reply:the key is ${SECRET} keep it]] [[chunk:5]]`)),
  },
  {
    name: 'a FIM prompt with a credential is blocked',
    env: 'development',
    async call(client, options) {
      const request = { model: 'codestral-latest', prompt: `key = "${SECRET}"` };
      const answer = await client.fim.complete(request, options);
      return answer.choices[0]?.message?.content;
    },
  },
  {
    name: 'embeddings inputs are redacted',
    env: 'development',
    async call(client, options) {
      const request = { model: 'mistral-embed', inputs: ['plain', `card ${CARD}`] };
      const answer = await client.embeddings.create(request, options);
      return answer.data.length;
    },
  },
  {
    name: 'a moderation request is forwarded',
    env: 'development',
    async call(client, options) {
      const request = { model: 'mistral-moderation-latest', inputs: ['a short text'] };
      const answer = await client.classifiers.moderate(request, options);
      return answer.results?.length;
    },
  },
  {
    name: 'a chat moderation with a card number is blocked where personal data is blocked',
    env: 'staging',
    async call(client, options) {
      const request = {
        model: 'mistral-moderation-latest',
        inputs: [{ role: 'user' as const, content: `card ${CARD}` }],
      };
      const answer = await client.classifiers.moderateChat(request, options);
      return answer.results?.length;
    },
  },
  {
    name: 'the second request in a minute is refused at one request a minute',
    env: 'tight',
    warmUp: 1,
    call: complete(ask('hello')),
  },
];

let mock: MockMistral;
let gateway: Child;
let dir: string;
let dataDir: string;
const viaGateway = new Map<Env, Mistral>();
const viaLibrary = new Map<Env, GuardedMistral>();
const libraryEvents: AuditEvent[] = [];

async function cli(args: string[]) {
  return runCli([...args, '--data-dir', dataDir], { cwd: dir });
}

async function createKey(env: Env): Promise<string> {
  const created = await cli(['keys', 'create', '--name', `parity-${env}`, '--env', env, '--json']);
  assert.equal(created.code, 0, created.stderr);
  return JSON.parse(created.stdout).key;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mg-parity-'));
  dataDir = join(dir, 'data');
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
  const models = "['mistral-small-*', 'codestral-*', 'mistral-embed', 'mistral-moderation-*']";
  await writeFile(
    join(dir, 'mistral-guard.yaml'),
    [
      `environments: [${ENVIRONMENTS.join(', ')}]`,
      'profiles:',
      '  development:',
      `    models: ${models}`,
      '    maxTokens: 256',
      // Email addresses pass in prompts and are redacted in answers: output redaction is seen.
      '    guard:',
      '      input:',
      '        detectors: { email: flag }',
      '  staging:',
      `    models: ${models}`,
      '    maxTokens: 256',
      // Personal data blocked in prompts; a credential passes in, but stops an answer.
      '    guard:',
      '      input:',
      '        categories: { pii: block }',
      '        detectors: { openai_api_key: flag }',
      '      output:',
      '        categories: { secret: block }',
      '  tight:',
      `    models: ${models}`,
      '    limits: { rpm: 1 }',
      '',
    ].join('\n'),
  );
  const env = { MISTRAL_API_KEY: UPSTREAM_KEY, MISTRAL_GUARD_ENV: 'development' };
  gateway = await startGatewayProcess({ dataDir, upstreamUrl: mock.url, cwd: dir, env });
  const config = await loadConfig({ cwd: dir, env: { ...env, MISTRAL_BASE_URL: mock.url } });
  const audit = {
    async record(event: Parameters<typeof toAuditRecord>[0]) {
      libraryEvents.push(toAuditRecord(event));
    },
  };
  for (const name of ENVIRONMENTS) {
    viaGateway.set(name, new Mistral({ apiKey: await createKey(name), serverURL: gateway.url }));
    viaLibrary.set(name, await createGuardedClient({ config, environment: name, audit }));
  }
});

after(async () => {
  for (const client of viaLibrary.values()) await client.close();
  await gateway?.stop();
  await mock?.close();
});

/** Runs one call and reads what happened, from the answer or from the error, on either side. */
async function outcomeOf(run: () => Promise<unknown>): Promise<Outcome> {
  const before = mock.requests.length;
  const forwarded = () => (mock.requests.length > before ? mock.requests.at(-1)!.body : null);
  try {
    const answer = await run();
    return { ok: true, answer, forwarded: forwarded() };
  } catch (error) {
    return { ok: false, ...errorFields(error), forwarded: forwarded() };
  }
}

function errorFields(error: unknown): Omit<Outcome, 'ok' | 'forwarded'> {
  if (isGuardError(error)) {
    const { status, code, param, message } = error;
    return { status, code, param, message, issues: error.issues ?? null };
  }
  if (error instanceof MistralError) {
    const body = JSON.parse(error.body) as Json;
    const { code, param, message } = body;
    return { status: error.statusCode, code, param, message, issues: body.issues ?? null };
  }
  throw error;
}

/** The fields of an audit event that say what was decided, not who or when. */
function decision(event: Json): Json {
  const { action, method, path, environment, model, stream, success, status, errorCode } = event;
  const { promptTokens, completionTokens, totalTokens, upstreamStatus, guard } = event;
  return {
    ...{ action, method, path, environment, model, stream, success, status, errorCode },
    ...{ promptTokens, completionTokens, totalTokens, upstreamStatus, guard },
  };
}

async function gatewayEvent(requestId: string): Promise<Json> {
  const tail = await cli(['audit', 'tail', '-n', '200', '--json']);
  assert.equal(tail.code, 0, tail.stderr);
  const events = tail.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Json);
  const event = events.find((e) => e.requestId === requestId);
  assert.ok(event, `no gateway audit event for ${requestId}`);
  return event;
}

describe('the guarded client and the gateway decide alike', () => {
  for (const c of CASES) {
    test(c.name, async () => {
      const plain = viaGateway.get(c.env)!;
      const guarded = viaLibrary.get(c.env)!;
      for (let i = 0; i < (c.warmUp ?? 0); i++) {
        await outcomeOf(() => c.call(plain, { headers: {} }));
        await outcomeOf(() => c.call(guarded, { headers: {} }));
      }

      const gatewayId = randomUUID();
      const atGateway = await outcomeOf(() =>
        c.call(plain, { headers: { 'x-request-id': gatewayId } }),
      );
      const libraryId = randomUUID();
      const inLibrary = await outcomeOf(() =>
        c.call(guarded.withContext({ requestId: libraryId }), { headers: {} }),
      );

      assert.deepEqual(inLibrary, atGateway);
      const libraryEvent = libraryEvents.find((e) => e.requestId === libraryId);
      assert.ok(libraryEvent, 'the library recorded no audit event');
      assert.deepEqual(decision(libraryEvent), decision(await gatewayEvent(gatewayId)));
    });
  }
});
