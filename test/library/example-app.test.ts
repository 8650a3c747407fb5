/**
 * The example chat app, started the way its header says (`node --import tsx
 * examples/chat-app/server.ts`, no upstream configured, so it brings up the loopback server),
 * driven over real HTTP.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { type Child, spawnServer, TSX } from '../support/processes.js';

const CARD = '4111 1111 1111 1111';
const EMAIL = 'jane.doe@example.com';
const SECRET = `sk-proj-${randomBytes(36).toString('base64url')}`;

// biome-ignore lint/suspicious/noExplicitAny: answers and audit lines are read as loose JSON
type Json = Record<string, any>;

let app: Child;

before(async () => {
  app = await spawnServer(process.execPath, ['--import', TSX, 'examples/chat-app/server.ts'], {
    env: { PORT: '0' },
    timeoutMs: 60_000,
  });
});

after(async () => {
  assert.equal(await app?.stop(), 0, app?.stderr.join('\n'));
});

async function chat(body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${app.url}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, requestId: res.headers.get('x-request-id') };
}

const user = (content: string) => ({ messages: [{ role: 'user', content }] });

/** The audit line the app printed for a request id. */
function auditOf(requestId: string | null): Json {
  const events = app.stdout
    .map((line) => JSON.parse(line) as Json)
    .filter((line) => line.audit)
    .map((line) => line.audit as Json);
  const event = events.find((e) => e.requestId === requestId);
  assert.ok(event, `no audit line for ${requestId}`);
  return event;
}

test('it started on the loopback upstream by itself', () => {
  assert.equal(JSON.parse(app.stdout[0]!).offline, true);
});

test('a chat is answered, and audited for the user with address and request id', async () => {
  const res = await chat(user('[[echo]] hello there'), {
    'x-user-id': 'ada',
    'x-request-id': 'app-req-1',
  });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(JSON.parse(res.text), { reply: 'hello there' });
  const event = auditOf('app-req-1');
  assert.equal(event.keyId, 'user:ada');
  assert.equal(event.clientIp, '127.0.0.1');
  assert.equal(event.model, 'mistral-small-latest');
  assert.equal(event.success, true);
});

test('a card number is redacted before it leaves, and the audit counts it', async () => {
  const res = await chat(user(`[[echo]] my card is ${CARD}`));
  assert.equal(JSON.parse(res.text).reply, 'my card is [REDACTED:CARD]');
  assert.deepEqual(auditOf(res.requestId).guard, {
    action: 'input:redact',
    findings: { 'input.payment_card': 1 },
  });
});

test('a credential is refused with 400, naming the field and never the value', async () => {
  const res = await chat(user(`deploy with ${SECRET}`));
  assert.equal(res.status, 400);
  const body = JSON.parse(res.text);
  assert.equal(body.code, 'sensitive_data_blocked');
  assert.equal(body.param, 'messages[0].content');
  assert.ok(!res.text.includes(SECRET.slice(8)));
  assert.equal(auditOf(res.requestId).errorCode, 'sensitive_data_blocked');
});

test('invalid fields are listed, and a body that is not JSON is refused', async () => {
  const res = await chat({ ...user('hi'), temperature: 9, max_tokens: -1 });
  assert.equal(res.status, 400);
  assert.deepEqual(
    JSON.parse(res.text).issues.map((i: Json) => i.path),
    ['temperature', 'max_tokens'],
  );
  const broken = await chat('{"messages":');
  assert.equal(JSON.parse(broken.text).code, 'invalid_json');
});

test('a streamed answer never carries the address to the browser', async () => {
  const res = await chat({ ...user(`[[reply:write to ${EMAIL} soon]] [[chunk:4]]`), stream: true });
  assert.equal(res.status, 200);
  const deltas = res.text
    .split('\n\n')
    .filter((block) => block.startsWith('data: {'))
    .map((block) => JSON.parse(block.slice(6)).delta as string);
  assert.equal(deltas.join(''), 'write to [REDACTED:EMAIL] soon');
  assert.match(res.text, /data: \[DONE\]/);
});
