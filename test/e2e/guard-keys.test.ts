import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';

// Per-key guard rules end to end: keys of one environment made through the CLI, a real gateway
// process and a loopback upstream. The profile redacts personal data in prompts (emails are only
// flagged, so a test can ask for an answer holding one) and lets answers through; each key
// narrows that on its own. Values are fakes.
const UPSTREAM_KEY = canaryUpstreamKey();
const CARD = '4111 1111 1111 1111';
const CARD_DIGITS = /4111\D?1111\D?1111\D?1111/;
const EMAIL = 'jane.doe@example.com';
const MODEL = 'mistral-small-latest';

// biome-ignore lint/suspicious/noExplicitAny: answers are read as loose JSON
type Json = Record<string, any>;

let mock: MockMistral;
let gateway: Child;
let dir: string;
let dataDir: string;

async function cli(args: string[]) {
  return runCli([...args, '--data-dir', dataDir], { cwd: dir });
}

async function createKey(name: string, extra: string[] = []): Promise<{ id: string; key: string }> {
  const created = await cli([
    'keys',
    'create',
    '--name',
    name,
    '--env',
    'staging',
    ...extra,
    '--json',
  ]);
  assert.equal(created.code, 0, created.stderr);
  const { id, key } = JSON.parse(created.stdout);
  return { id, key };
}

async function post(key: string, content: string, extra: Record<string, unknown> = {}) {
  const res = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content }], ...extra }),
  });
  const text = await res.text();
  return { status: res.status, text, json: (extra.stream ? {} : JSON.parse(text)) as Json };
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
  dir = await mkdtemp(join(tmpdir(), 'mg-guard-keys-e2e-'));
  dataDir = join(dir, 'data');
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
  await writeFile(
    join(dir, 'mistral-guard.yaml'),
    [
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
  );
  strict = await createKey('strict', ['--guard', 'input.pii=block']);
  plain = await createKey('plain');
  // A looser rule (input.secret=allow) sits beside a stricter one and changes nothing.
  watchful = await createKey('watchful', ['--guard', 'output.email=redact,input.secret=allow']);
  gateway = await startGatewayProcess({
    dataDir,
    upstreamUrl: mock.url,
    cwd: dir,
    env: { MISTRAL_API_KEY: UPSTREAM_KEY, MISTRAL_GUARD_ENV: 'staging' },
  });
});

after(async () => {
  await gateway?.stop();
  await mock?.close();
});

describe('per-key guard rules', () => {
  test('a card is blocked for the key that blocks personal data and never forwarded', async () => {
    const before = mock.requests.length;
    const res = await post(strict.key, `Charge my card ${CARD} please`);
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.code, 'sensitive_data_blocked');
    assert.match(res.json.message, /pii \(payment_card\)/);
    assert.doesNotMatch(res.text, CARD_DIGITS);
    assert.equal(mock.requests.length, before, 'the upstream received the blocked request');
  });

  test('the same card is redacted for another key of the same environment', async () => {
    const res = await post(plain.key, `[[echo]] Charge my card ${CARD} please`);
    assert.equal(res.status, 200, res.text);
    const forwarded = JSON.stringify(mock.requests.at(-1)!.body);
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
    const updated = await cli(['keys', 'update', plain.id, '--guard', 'input.payment_card=block']);
    assert.equal(updated.code, 0, updated.stderr);
    assert.equal((await post(plain.key, `card ${CARD}`)).status, 400);

    const cleared = await cli(['keys', 'update', plain.id, '--guard', 'default']);
    assert.equal(cleared.code, 0, cleared.stderr);
    const res = await post(plain.key, `[[echo]] card ${CARD}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.choices[0].message.content, 'card [REDACTED:CARD]');
  });

  test('a malformed --guard is a usage error naming the flag, never echoing the value', async () => {
    const secretish = 'input.sk-proj-abcdefghijklmnop=block';
    for (const value of [secretish, 'input.pii=shout', 'sideways.pii=block', ',']) {
      const res = await cli(['keys', 'create', '--name', 'bad', '--guard', value]);
      assert.notEqual(res.code, 0, value);
      assert.match(res.stderr, /--guard/);
      assert.ok(!res.stderr.includes('abcdefghijklmnop'), 'the value was echoed');
    }
    const res = await cli(['keys', 'create', '--name', 'bad', '--guard', 'default']);
    assert.notEqual(res.code, 0, '"default" is only for keys update');
  });
});
