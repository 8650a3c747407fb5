import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { canaryUpstreamKey } from '../support/canary.js';
import { GatewaySession } from '../support/gateway-session.js';

// Per-key guard rules end to end: keys of one environment made through the CLI, a real gateway
// process and a loopback upstream. The profile redacts personal data in prompts (emails are only
// flagged, so a test can ask for an answer holding one) and lets answers through; each key
// narrows that on its own. Values are fakes.
const UPSTREAM_KEY = canaryUpstreamKey();
const CARD = '4111 1111 1111 1111';
const CARD_DIGITS = /4111\D?1111\D?1111\D?1111/;
const EMAIL = 'jane.doe@example.com';
const MODEL = 'mistral-small-latest';

let session: GatewaySession;

function post(key: string, content: string, extra: Record<string, unknown> = {}) {
  return session.post(key, { model: MODEL, messages: [{ role: 'user', content }], ...extra });
}

/** The text of an SSE answer, its deltas joined. */
function streamedText(raw: string): string {
  let text = '';
  for (const line of raw.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    text += JSON.parse(line.slice(6)).choices?.[0]?.delta?.content ?? '';
  }
  return text;
}

let strict: { id: string; key: string };
let plain: { id: string; key: string };
let watchful: { id: string; key: string };

before(async () => {
  session = await GatewaySession.start({
    upstreamKey: UPSTREAM_KEY,
    env: { MISTRAL_GUARD_ENV: 'staging' },
    yaml: [
      'environments: [staging]',
      'profiles:',
      '  staging:',
      '    guard:',
      '      input:',
      '        categories: { pii: redact }',
      '        detectors: { email: flag }',
      '      output:',
      '        categories: { secret: allow, pii: allow }',
      '',
    ].join('\n'),
  });
  const staging = ['--env', 'staging'];
  strict = await session.createKey('strict', [...staging, '--guard', 'input.pii=block']);
  plain = await session.createKey('plain', staging);
  // A looser rule (input.secret=allow) sits beside a stricter one and changes nothing.
  watchful = await session.createKey('watchful', [
    ...staging,
    '--guard',
    'output.email=redact,input.secret=allow',
  ]);
});

after(async () => {
  await session?.stop();
});

describe('per-key guard rules', () => {
  test('a card is blocked for the key that blocks personal data and never forwarded', async () => {
    const before = session.mock.requests.length;
    const res = await post(strict.key, `Charge my card ${CARD} please`);
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.code, 'sensitive_data_blocked');
    assert.match(res.json.message, /pii \(payment_card\)/);
    assert.doesNotMatch(res.text, CARD_DIGITS);
    assert.equal(session.mock.requests.length, before, 'the upstream received the blocked request');
  });

  test('the same card is redacted for another key of the same environment', async () => {
    const res = await post(plain.key, `[[echo]] Charge my card ${CARD} please`);
    assert.equal(res.status, 200, res.text);
    const forwarded = JSON.stringify(session.mock.requests.at(-1)!.body);
    assert.doesNotMatch(forwarded, CARD_DIGITS);
    assert.equal(res.json.choices[0].message.content, 'Charge my card [REDACTED:CARD] please');
  });

  test('a key output rule redacts answers the profile lets through, buffered and streamed', async () => {
    const reply = `[[reply:write to ${EMAIL} today]]`;
    const open = await post(plain.key, reply);
    assert.equal(open.json.choices[0].message.content, `write to ${EMAIL} today`);

    const buffered = await post(watchful.key, reply);
    assert.equal(buffered.json.choices[0].message.content, 'write to [REDACTED:EMAIL] today');
    const streamed = await post(watchful.key, `${reply} [[chunk:3]]`, { stream: true });
    assert.equal(streamed.status, 200);
    assert.ok(!streamed.text.includes('jane.doe'), 'a prefix of the address reached the client');
    assert.equal(streamedText(streamed.text), 'write to [REDACTED:EMAIL] today');
  });

  test('keys update --guard changes the rules and "default" clears them', async () => {
    const updated = await session.cli([
      'keys',
      'update',
      plain.id,
      '--guard',
      'input.payment_card=block',
    ]);
    assert.equal(updated.code, 0, updated.stderr);
    assert.equal((await post(plain.key, `card ${CARD}`)).status, 400);

    const cleared = await session.cli(['keys', 'update', plain.id, '--guard', 'default']);
    assert.equal(cleared.code, 0, cleared.stderr);
    const res = await post(plain.key, `[[echo]] card ${CARD}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.choices[0].message.content, 'card [REDACTED:CARD]');
  });

  test('a malformed --guard is a usage error naming the flag, never echoing the value', async () => {
    const secretish = 'input.sk-proj-abcdefghijklmnop=block';
    for (const value of [secretish, 'input.pii=shout', 'sideways.pii=block', ',']) {
      const res = await session.cli(['keys', 'create', '--name', 'bad', '--guard', value]);
      assert.notEqual(res.code, 0, value);
      assert.match(res.stderr, /--guard/);
      assert.ok(!res.stderr.includes('abcdefghijklmnop'), 'the value was echoed');
    }
    const res = await session.cli(['keys', 'create', '--name', 'bad', '--guard', 'default']);
    assert.notEqual(res.code, 0, '"default" is only for keys update');
  });
});
