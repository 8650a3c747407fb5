import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Mistral } from '@mistralai/mistralai';
import { createScanner } from '../../src/guard/index.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { GatewaySession, type Json } from '../support/gateway-session.js';

// The gateway's content guard end to end: real gateway process, real loopback upstream, the
// official SDK as client. Values are fakes: a test card number, a made-up address, a random
// key-shaped string.
const UPSTREAM_KEY = canaryUpstreamKey();
const CARD = '4111 1111 1111 1111';
const CARD_DIGITS = /4111\D?1111\D?1111\D?1111/;
const EMAIL = 'jane.doe@example.com';
const OPENAI_LIKE = `sk-proj-${randomBytes(36).toString('base64url')}`;
const MODEL = 'mistral-small-latest';

let session: GatewaySession;
/** Development: personal data redacted, emails only flagged, answers sanitised. */
let devKey: string;
/** Staging: personal data blocked. */
let stagingKey: string;

function ask(content: string, extra: Record<string, unknown> = {}) {
  return { model: MODEL, messages: [{ role: 'user', content }], ...extra };
}

/** The audit event of a request, read through the CLI as an operator would. */
async function auditOf(requestId: string): Promise<Json> {
  return (await session.auditEvent(requestId)).event;
}

/** Reads an SSE answer event by event, keeping each chunk's delta content. */
async function streamContents(key: string, body: Record<string, unknown>) {
  const res = await fetch(`${session.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(res.status, 200);
  const raw = await res.text();
  const contents: string[] = [];
  let done = 0;
  for (const block of raw.split('\n\n')) {
    const data = block
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => l.slice(6))
      .join('\n');
    if (!data) continue;
    if (data === '[DONE]') {
      done++;
      continue;
    }
    const chunk = JSON.parse(data);
    contents.push(chunk.choices?.[0]?.delta?.content ?? '');
  }
  return { contents, done, requestId: res.headers.get('x-request-id')!, raw };
}

before(async () => {
  session = await GatewaySession.start({
    upstreamKey: UPSTREAM_KEY,
    env: { MISTRAL_GUARD_ENV: 'development' },
    yaml: [
      'environments: [development, staging]',
      'profiles:',
      '  development:',
      '    guard:',
      '      input:',
      '        detectors: { email: flag }',
      '      sanitize: { enabled: true, allowedLinkHosts: [docs.mistral.ai] }',
      '  staging:',
      '    guard:',
      '      input:',
      '        categories: { pii: block }',
      '',
    ].join('\n'),
  });
  for (const env of ['development', 'staging']) {
    const { key } = await session.createKey(`guard-${env}`, ['--env', env]);
    if (env === 'development') devKey = key;
    else stagingKey = key;
  }
});

after(async () => {
  await session?.stop();
});

describe('prompts', () => {
  test('a card number is blocked where the policy blocks personal data, and never forwarded', async () => {
    const before = session.mock.requests.length;
    const res = await session.post(stagingKey, ask(`Charge my card ${CARD} please`));
    assert.equal(res.status, 400);
    assert.equal(res.json.code, 'sensitive_data_blocked');
    assert.equal(res.json.param, 'messages[0].content');
    assert.match(res.json.message, /pii \(payment_card\)/);
    assert.doesNotMatch(res.text, CARD_DIGITS);
    assert.equal(session.mock.requests.length, before, 'the upstream received the blocked request');
    const event = await auditOf(res.json.request_id);
    assert.equal(event.errorCode, 'sensitive_data_blocked');
    assert.deepEqual(event.guard, {
      action: 'input:block',
      findings: { 'input.payment_card': 1 },
    });
  });

  test('a card number is redacted where the policy redacts: the upstream gets the placeholder', async () => {
    const res = await session.post(devKey, ask(`[[echo]] Charge my card ${CARD} please`));
    assert.equal(res.status, 200, res.text);
    const forwarded = JSON.stringify(session.mock.requests.at(-1)!.body);
    assert.doesNotMatch(forwarded, CARD_DIGITS);
    assert.match(forwarded, /Charge my card \[REDACTED:CARD\] please/);
    assert.equal(res.json.choices[0].message.content, 'Charge my card [REDACTED:CARD] please');
    const event = await auditOf(res.requestId);
    assert.equal(event.guard.action, 'input:redact');
    assert.equal(event.guard.findings['input.payment_card'], 1);
  });

  test('a credential in a tool result is blocked by default, whatever the message role', async () => {
    const before = session.mock.requests.length;
    const res = await session.post(devKey, {
      model: MODEL,
      messages: [
        { role: 'user', content: 'look up the deploy key' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ id: 'call_1', function: { name: 'lookup', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: `found it: ${OPENAI_LIKE}` },
      ],
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.code, 'sensitive_data_blocked');
    assert.equal(res.json.param, 'messages[2].content');
    assert.match(res.json.message, /secret \(openai_api_key\)/);
    assert.ok(!res.text.includes(OPENAI_LIKE.slice(8)), 'the key body appears in the error');
    assert.equal(session.mock.requests.length, before);
  });

  test('a flagged value is forwarded and recorded', async () => {
    const res = await session.post(devKey, ask(`[[echo]] my address is ${EMAIL}`));
    assert.equal(res.status, 200);
    assert.ok(JSON.stringify(session.mock.requests.at(-1)!.body).includes(EMAIL));
    // The answer echoes the address, and the output policy redacts it.
    assert.equal(res.json.choices[0].message.content, 'my address is [REDACTED:EMAIL]');
    const event = await auditOf(res.requestId);
    assert.equal(event.guard.action, 'input:flag output:redact');
    assert.deepEqual(event.guard.findings, { 'input.email': 1, 'output.email': 1 });
  });
});

describe('answers', () => {
  const prose = 'Here is the summary you asked for, with every detail checked twice. '.repeat(3);
  const reply = `${prose}Write to ${EMAIL} for the rest, or call us.`;

  test('an email split across stream chunks reaches the client redacted, never a prefix of it', async () => {
    const stream = await streamContents(devKey, ask(`[[reply:${reply}]] [[chunk:3]]`));
    const text = stream.contents.join('');
    assert.equal(text, reply.replace(EMAIL, '[REDACTED:EMAIL]'));
    assert.equal(stream.done, 1);
    assert.ok(!stream.raw.includes('jane'), 'a piece of the address reached the client');
    assert.ok(!stream.raw.includes('example.com'));

    // The first text leaves after at most the redactor's hold-back of upstream text: with
    // 3-character chunks, that many events can be empty before the first released text.
    const holdBack = createScanner().rules.baseHoldBack;
    const firstText = stream.contents.findIndex((c) => c.length > 0);
    assert.ok(firstText >= 0);
    assert.ok(
      firstText <= Math.ceil(holdBack / 3) + 1,
      `first text after ${firstText} events; hold-back allows ${Math.ceil(holdBack / 3) + 1}`,
    );
    const event = await auditOf(stream.requestId);
    assert.equal(event.guard.findings['output.email'], 1);
  });

  test('the streamed and the buffered answer to the same text are redacted identically', async () => {
    const buffered = await session.post(devKey, ask(`[[reply:${reply}]]`));
    const streamed = await streamContents(devKey, ask(`[[reply:${reply}]] [[chunk:7]]`));
    assert.equal(streamed.contents.join(''), buffered.json.choices[0].message.content);
  });

  test('the official SDK streams a redacted answer', async () => {
    const client = new Mistral({ apiKey: devKey, serverURL: session.url });
    const stream = await client.chat.stream({
      model: MODEL,
      messages: [{ role: 'user', content: `[[reply:mail ${EMAIL} ok]] [[chunk:2]]` }],
    });
    let text = '';
    for await (const event of stream) {
      const content = event.data.choices[0]?.delta.content;
      if (typeof content === 'string') text += content;
    }
    assert.equal(text, 'mail [REDACTED:EMAIL] ok');
  });

  test('links and images to hosts off the allow-list are neutralised, streamed or not', async () => {
    const md =
      'See ![chart](https://evil.example/c.png?q=42) and [docs](https://docs.mistral.ai/x).';
    const expected = 'See chart and [docs](https://docs.mistral.ai/x).';
    const buffered = await session.post(devKey, ask(`[[reply:${md}]]`));
    assert.equal(buffered.json.choices[0].message.content, expected);
    const streamed = await streamContents(devKey, ask(`[[reply:${md}]] [[chunk:4]]`));
    assert.equal(streamed.contents.join(''), expected);
  });

  test('a staging answer without sanitising keeps its links', async () => {
    const md = 'See [x](https://example.org/a).';
    const res = await session.post(stagingKey, ask(`[[reply:${md}]]`));
    assert.equal(res.json.choices[0].message.content, md);
  });
});
