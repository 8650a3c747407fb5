import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';

// Bodies in the audit trail, by opt-in: a real gateway process with `audit.bodies.store` on,
// the loopback upstream, the trail read back through the CLI. The profile only flags emails, so
// the upstream gets them as they are, and the trail must still not hold one.
const UPSTREAM_KEY = canaryUpstreamKey();
const EMAIL = 'jane.doe@example.com';
const OPENAI_LIKE = `sk-proj-${randomBytes(36).toString('base64url')}`;
const MAX_BYTES = 4096;
/** A word only this deployment knows is sensitive: a custom detector of the profile. */
const PROJECT = 'Bluefinch';

// biome-ignore lint/suspicious/noExplicitAny: audit events are read as loose JSON
type Json = Record<string, any>;

let mock: MockMistral;
let gateway: Child;
let dir: string;
let dataDir: string;
let key: string;
/** A key whose profile lets answers through unredacted. */
let stagingKey: string;

async function cli(args: string[]) {
  return runCli([...args, '--data-dir', dataDir], { cwd: dir });
}

async function chat(content: string, extra: Record<string, unknown> = {}, as = key) {
  const res = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content }],
      ...extra,
    }),
  });
  const text = await res.text();
  return { status: res.status, text, requestId: res.headers.get('x-request-id') ?? '' };
}

/** The audit event of a request as `audit tail --json` prints it, and that line's text. */
async function eventOf(requestId: string): Promise<{ event: Json; line: string }> {
  const tail = await cli(['audit', 'tail', '-n', '50', '--json']);
  assert.equal(tail.code, 0, tail.stderr);
  const line = tail.stdout.split('\n').find((l) => l.includes(`"requestId":"${requestId}"`));
  assert.ok(line, `no audit event for ${requestId}`);
  return { event: JSON.parse(line), line };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mg-bodies-'));
  dataDir = join(dir, 'data');
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
  await writeFile(
    join(dir, 'mistral-guard.yaml'),
    [
      `audit: { bodies: { store: true, maxBytes: ${MAX_BYTES} } }`,
      'environments: [development, staging]',
      'profiles:',
      '  development:',
      '    guard:',
      '      input:',
      '        detectors: { email: flag, project_code: flag }',
      '      output:',
      '        detectors: { project_code: flag }',
      '      customWords:',
      `        - { id: project_code, words: [${PROJECT}] }`,
      // Personal data passes untouched here, both ways: no stream guard runs, and the trail must
      // still redact.
      '  staging:',
      '    guard:',
      '      input: { categories: { pii: allow } }',
      '      output: { categories: { secret: allow, pii: allow } }',
      '',
    ].join('\n'),
  );
  const created = await cli(['keys', 'create', '--name', 'bodies', '--json']);
  assert.equal(created.code, 0, created.stderr);
  key = JSON.parse(created.stdout).key;
  const staging = await cli(['keys', 'create', '--name', 'open', '--env', 'staging', '--json']);
  assert.equal(staging.code, 0, staging.stderr);
  stagingKey = JSON.parse(staging.stdout).key;
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

test('bodies are off unless configured', () => {
  assert.equal(configSchema.parse({}).audit.bodies.store, false);
  const tooBig = configSchema.safeParse({ audit: { bodies: { maxBytes: 2 * 1024 * 1024 } } });
  assert.equal(tooBig.success, false);
});

test('a flagged email reaches the upstream but the stored bodies hold only its placeholder', async () => {
  const before = mock.requests.length;
  const res = await chat(`Write to ${EMAIL} [[reply:Sure, I will mail ${EMAIL} today.]]`);
  assert.equal(res.status, 200, res.text);
  const forwarded = JSON.stringify(mock.requests.slice(before).map((r) => r.body));
  assert.ok(forwarded.includes(EMAIL), 'the email was only flagged, so it went upstream');

  const { event, line } = await eventOf(res.requestId);
  assert.ok(!line.includes(EMAIL), 'the trail holds the email');
  const request = JSON.parse(event.bodies.request);
  assert.match(request.messages[0].content, /^Write to \[REDACTED:EMAIL\]/);
  const response = JSON.parse(event.bodies.response);
  assert.equal(response.object, 'chat.completion');
  assert.equal(event.bodies.truncated, false);
});

test('a streamed answer is kept assembled, redacted', async () => {
  const res = await chat(`Hello [[reply:Reach me at ${EMAIL} anytime.]]`, { stream: true });
  assert.equal(res.status, 200);
  const { event, line } = await eventOf(res.requestId);
  assert.ok(!line.includes(EMAIL));
  const answer = JSON.parse(event.bodies.response);
  assert.equal(answer.stream, true);
  assert.equal(answer.choices[0].content, 'Reach me at [REDACTED:EMAIL] anytime.');
});

test('a value the stream spread over many events is redacted whole, guard or not', async () => {
  const res = await chat(
    `Hi [[reply:Write to ${EMAIL} today.]] [[chunk:4]]`,
    { stream: true },
    stagingKey,
  );
  assert.equal(res.status, 200);
  const pieces = [...res.text.matchAll(/"content":"([^"]*)"/g)].map((m) => m[1]).join('');
  assert.ok(pieces.includes(EMAIL), 'the client got the email, in pieces');
  assert.ok(!res.text.includes(EMAIL), 'no single event held it whole');
  const { event, line } = await eventOf(res.requestId);
  assert.ok(!line.includes('jane.doe'), 'the trail holds a piece of the email');
  const answer = JSON.parse(event.bodies.response);
  assert.equal(answer.choices[0].content, 'Write to [REDACTED:EMAIL] today.');
});

test('a blocked request is on record with its secret replaced', async () => {
  const res = await chat(`Use this key: ${OPENAI_LIKE}`);
  assert.ok(res.status >= 400 && res.status < 500, res.text);
  const { event, line } = await eventOf(res.requestId);
  assert.ok(!line.includes(OPENAI_LIKE), 'the trail holds the blocked key');
  assert.match(event.bodies.request, /REDACTED/);
  assert.equal(event.bodies.response, null);
});

test("the gateway's own upstream key is kept out of the trail, shape or not", async () => {
  const res = await chat(`My token is ${UPSTREAM_KEY}, keep it [[reply:ok]]`);
  const { line } = await eventOf(res.requestId);
  assert.ok(!line.includes(UPSTREAM_KEY));
  assert.match(line, /UPSTREAM_KEY/);
});

test('a key pasted as the model name is not kept in the event either', async () => {
  const res = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: OPENAI_LIKE, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.arrayBuffer();
  const { event, line } = await eventOf(res.headers.get('x-request-id') ?? '');
  assert.ok(!line.includes(OPENAI_LIKE));
  assert.match(event.model, /REDACTED/);
});

test('a body past maxBytes is cut, by UTF-8 bytes and never inside a character', async () => {
  const res = await chat(`${'é lorem ipsum '.repeat(1000)}[[reply:ok]]`);
  assert.equal(res.status, 200);
  const { event } = await eventOf(res.requestId);
  assert.equal(event.bodies.truncated, true);
  assert.ok(Buffer.byteLength(event.bodies.request) <= MAX_BYTES);
  assert.ok(Buffer.byteLength(event.bodies.request) > MAX_BYTES - 4);
  assert.ok(!event.bodies.request.includes('\uFFFD'));
});

test("the profile's own detectors apply too, to member names as well as values", async () => {
  const res = await chat(`Status of ${PROJECT}? [[reply:${PROJECT} ships on Friday.]]`, {
    response_format: {
      type: 'json_schema',
      json_schema: {
        name: 'status',
        schema: { type: 'object', properties: { [EMAIL]: { type: 'string' } } },
      },
    },
  });
  assert.equal(res.status, 200, res.text);
  assert.ok(res.text.includes(PROJECT), 'only flagged: the client sees the word');
  const { line } = await eventOf(res.requestId);
  assert.ok(!line.includes(PROJECT), 'the trail holds the custom word');
  assert.ok(!line.includes(EMAIL), 'the trail holds an email used as a member name');
});

test('the trail with bodies verifies', async () => {
  const verified = await cli(['audit', 'verify']);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
});
