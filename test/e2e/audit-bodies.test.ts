import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { GatewaySession } from '../support/gateway-session.js';

// Bodies in the audit trail, by opt-in: a real gateway process with `audit.bodies.store` on,
// the loopback upstream, the trail read back through the CLI. The profile only flags emails, so
// the upstream gets them as they are, and the trail must still not hold one.
const UPSTREAM_KEY = canaryUpstreamKey();
const EMAIL = 'jane.doe@example.com';
const OPENAI_LIKE = `sk-proj-${randomBytes(36).toString('base64url')}`;
const MAX_BYTES = 4096;
/** A word only this deployment knows is sensitive: a custom detector of the profile. */
const PROJECT = 'Bluefinch';

let session: GatewaySession;
let key: string;
/** A key whose profile lets answers through unredacted. */
let stagingKey: string;

function chat(content: string, extra: Record<string, unknown> = {}, as = key) {
  const body = { model: 'mistral-small-latest', messages: [{ role: 'user', content }], ...extra };
  return session.post(as, body);
}

before(async () => {
  session = await GatewaySession.start({
    upstreamKey: UPSTREAM_KEY,
    env: { MISTRAL_GUARD_ENV: 'development' },
    yaml: [
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
  });
  key = (await session.createKey('bodies')).key;
  stagingKey = (await session.createKey('open', ['--env', 'staging'])).key;
});

after(async () => {
  await session?.stop();
});

test('bodies are off unless configured', () => {
  assert.equal(configSchema.parse({}).audit.bodies.store, false);
  const tooBig = configSchema.safeParse({ audit: { bodies: { maxBytes: 2 * 1024 * 1024 } } });
  assert.equal(tooBig.success, false);
});

test('a flagged email reaches the upstream but the stored bodies hold only its placeholder', async () => {
  const before = session.mock.requests.length;
  const res = await chat(`Write to ${EMAIL} [[reply:Sure, I will mail ${EMAIL} today.]]`);
  assert.equal(res.status, 200, res.text);
  const forwarded = JSON.stringify(session.mock.requests.slice(before).map((r) => r.body));
  assert.ok(forwarded.includes(EMAIL), 'the email was only flagged, so it went upstream');

  const { event, line } = await session.auditEvent(res.requestId);
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
  const { event, line } = await session.auditEvent(res.requestId);
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
  const { event, line } = await session.auditEvent(res.requestId);
  assert.ok(!line.includes('jane.doe'), 'the trail holds a piece of the email');
  const answer = JSON.parse(event.bodies.response);
  assert.equal(answer.choices[0].content, 'Write to [REDACTED:EMAIL] today.');
});

test('a blocked request is on record with its secret replaced', async () => {
  const res = await chat(`Use this key: ${OPENAI_LIKE}`);
  assert.ok(res.status >= 400 && res.status < 500, res.text);
  const { event, line } = await session.auditEvent(res.requestId);
  assert.ok(!line.includes(OPENAI_LIKE), 'the trail holds the blocked key');
  assert.match(event.bodies.request, /REDACTED/);
  assert.equal(event.bodies.response, null);
});

test("the gateway's own upstream key is kept out of the trail, shape or not", async () => {
  const res = await chat(`My token is ${UPSTREAM_KEY}, keep it [[reply:ok]]`);
  const { line } = await session.auditEvent(res.requestId);
  assert.ok(!line.includes(UPSTREAM_KEY));
  assert.match(line, /UPSTREAM_KEY/);
});

test('a key pasted as the model name is not kept in the event either', async () => {
  const res = await session.post(key, {
    model: OPENAI_LIKE,
    messages: [{ role: 'user', content: 'hi' }],
  });
  const { event, line } = await session.auditEvent(res.requestId);
  assert.ok(!line.includes(OPENAI_LIKE));
  assert.match(event.model, /REDACTED/);
});

test('a body past maxBytes is cut, by UTF-8 bytes and never inside a character', async () => {
  const res = await chat(`${'é lorem ipsum '.repeat(1000)}[[reply:ok]]`);
  assert.equal(res.status, 200);
  const { event } = await session.auditEvent(res.requestId);
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
  const { line } = await session.auditEvent(res.requestId);
  assert.ok(!line.includes(PROJECT), 'the trail holds the custom word');
  assert.ok(!line.includes(EMAIL), 'the trail holds an email used as a member name');
});

test('the trail with bodies verifies', async () => {
  const verified = await session.cli(['audit', 'verify']);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
});
