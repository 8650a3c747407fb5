import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';

// The admin API over HTTP, on a real gateway process: present only with a token, the token
// checked, every call audited, and the token never written anywhere.
const UPSTREAM_KEY = canaryUpstreamKey();
const ADMIN_TOKEN = `admin-${randomBytes(24).toString('base64url')}`;

let mock: MockMistral;
let dir: string;
const children: Child[] = [];

async function gatewayWith(name: string, yaml: string[], env: Record<string, string> = {}) {
  const cwd = join(dir, name);
  await mkdir(cwd, { recursive: true });
  await writeFile(join(cwd, 'mistral-guard.yaml'), `${yaml.join('\n')}\n`);
  const dataDir = join(cwd, 'data');
  const gateway = await startGatewayProcess({
    dataDir,
    upstreamUrl: mock.url,
    cwd,
    env: { MISTRAL_API_KEY: UPSTREAM_KEY, MISTRAL_GUARD_ENV: 'development', ...env },
  });
  children.push(gateway);
  return { gateway, dataDir, cwd };
}

function admin(gateway: Child, path: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${init.token ?? ADMIN_TOKEN}`);
  if (init.body) headers.set('content-type', 'application/json');
  return fetch(`${gateway.url}/admin${path}`, { ...init, headers });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mg-admin-'));
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
});

after(async () => {
  for (const child of children) await child.stop();
  await mock?.close();
});

describe('admin API', () => {
  test('does not exist without a token', async () => {
    const { gateway } = await gatewayWith('none', []);
    const res = await admin(gateway, '/keys');
    assert.notEqual(res.status, 200);
    const body = (await res.json()) as { code: string };
    assert.ok(!body.code.startsWith('admin_'));
  });

  test('manages keys with the token, refuses without it, and audits every call', async () => {
    const { gateway, dataDir, cwd } = await gatewayWith('keys', [], {
      MISTRAL_GUARD_ADMIN_TOKEN: ADMIN_TOKEN,
    });
    const wrong = await admin(gateway, '/keys', { token: `${ADMIN_TOKEN}x` });
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { code: string }).code, 'admin_unauthorized');

    const created = await admin(gateway, '/keys', {
      method: 'POST',
      body: JSON.stringify({
        name: 'from-admin',
        environment: 'development',
        models: ['mistral-small-latest'],
        limits: { rpm: 5 },
      }),
    });
    assert.equal(created.status, 201);
    const key = (await created.json()) as { id: string; key: string; limits: { rpm: number } };
    assert.match(key.key, /^mg_/);
    assert.equal(key.limits.rpm, 5);
    assert.ok(!('hash' in key));

    const chat = () =>
      fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'mistral-small-latest',
          messages: [{ role: 'user', content: 'hi' }],
        }),
      });
    assert.equal((await chat()).status, 200);

    const invalid = await admin(gateway, `/keys/${key.id}`, {
      method: 'PATCH',
      body: JSON.stringify({ limits: { rpm: -3 } }),
    });
    assert.equal(invalid.status, 400);
    assert.equal(((await invalid.json()) as { param: string }).param, 'limits.rpm');

    const updated = await admin(gateway, `/keys/${key.id}`, {
      method: 'PATCH',
      body: JSON.stringify({ name: 'renamed' }),
    });
    assert.equal(((await updated.json()) as { name: string }).name, 'renamed');

    const listed = (await (await admin(gateway, '/keys')).json()) as {
      data: Array<{ id: string }>;
    };
    assert.ok(listed.data.some((k) => k.id === key.id));

    assert.equal((await admin(gateway, `/keys/${key.id}/revoke`, { method: 'POST' })).status, 200);
    const refused = await chat();
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { code: string }).code, 'revoked_api_key');
    assert.equal((await admin(gateway, '/keys/key_nope')).status, 404);

    const tail = await runCli(['audit', 'tail', '-n', '50', '--json', '--data-dir', dataDir], {
      cwd,
    });
    const actions = tail.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.action.startsWith('admin.') && e.method)
      .map((e) => `${e.action} ${e.status}`);
    for (const expected of [
      'admin.key.list 401',
      'admin.key.create 201',
      'admin.key.update 400',
      'admin.key.update 200',
      'admin.key.revoke 200',
      'admin.key.show 404',
    ]) {
      assert.ok(actions.includes(expected), `missing ${expected} in ${actions.join(', ')}`);
    }
    for (const text of [tail.stdout, ...gateway.stdout, ...gateway.stderr]) {
      assert.ok(!text.includes(ADMIN_TOKEN), 'the admin token was written out');
    }
  });

  test('answers its own 404 for unknown admin routes, and throttles wrong tokens', async () => {
    const { gateway } = await gatewayWith('throttle', [], {
      MISTRAL_GUARD_ADMIN_TOKEN: ADMIN_TOKEN,
    });
    const unknown = await admin(gateway, '/keys', { method: 'PUT', body: '{}' });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { code: string }).code, 'not_found');
    const codes: string[] = [];
    for (let i = 0; i < 22; i++) {
      const res = await admin(gateway, '/keys', { token: `${ADMIN_TOKEN}${i}` });
      codes.push(((await res.json()) as { code: string }).code);
    }
    assert.equal(codes.filter((c) => c === 'admin_unauthorized').length, 20);
    assert.equal(codes.at(-1), 'too_many_auth_failures');
  });

  test('is refused from addresses outside allowFrom', async () => {
    const { gateway } = await gatewayWith('allow', ['admin:', "  allowFrom: ['10.0.0.0/8']"], {
      MISTRAL_GUARD_ADMIN_TOKEN: ADMIN_TOKEN,
    });
    const res = await admin(gateway, '/keys');
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { code: string }).code, 'admin_forbidden');
  });

  test('a short admin token stops start-up', async () => {
    await assert.rejects(
      gatewayWith('short', [], { MISTRAL_GUARD_ADMIN_TOKEN: 'too-short' }),
      /at least 32 characters/,
    );
  });
});

describe('upstream key rotation through the admin API', () => {
  test('new requests use the new key at once, and fall back to the old one when it is refused', async () => {
    const oldKey = canaryUpstreamKey();
    const newKey = canaryUpstreamKey();
    const rotating = await startMockMistral({ validKeys: [oldKey] });
    try {
      const cwd = join(dir, 'rotate');
      await mkdir(cwd, { recursive: true });
      const keyFile = join(cwd, 'mistral.key');
      await writeFile(keyFile, `${oldKey}\n`, { mode: 0o600 });
      await writeFile(
        join(cwd, 'mistral-guard.yaml'),
        [
          'upstreamKey:',
          '  sources:',
          `    development: { source: file, path: ${keyFile} }`,
          '',
        ].join('\n'),
      );
      const dataDir = join(cwd, 'data');
      const created = await runCli(
        ['keys', 'create', '--name', 'app', '--json', '--data-dir', dataDir],
        {
          cwd,
        },
      );
      const appKey = JSON.parse(created.stdout).key as string;
      const gateway = await startGatewayProcess({
        dataDir,
        upstreamUrl: rotating.url,
        cwd,
        env: { MISTRAL_GUARD_ENV: 'development', MISTRAL_GUARD_ADMIN_TOKEN: ADMIN_TOKEN },
      });
      children.push(gateway);
      const chat = async () => {
        const res = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${appKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'mistral-small-latest',
            messages: [{ role: 'user', content: 'hi' }],
          }),
        });
        await res.arrayBuffer();
        return res.status;
      };
      assert.equal(await chat(), 200);
      assert.equal(rotating.requests.at(-1)!.authorization, `Bearer ${oldKey}`);

      // A key the upstream refuses is not taken: the caller's mistake, named without the key.
      const refused = await admin(gateway, '/upstream/rotate', {
        method: 'POST',
        body: JSON.stringify({ environment: 'development', key: newKey }),
      });
      assert.equal(refused.status, 400);
      const refusal = (await refused.json()) as { param: string; message: string };
      assert.equal(refusal.param, 'key');
      assert.ok(!refusal.message.includes(newKey));

      rotating.setValidKeys([oldKey, newKey]);
      const rotated = await admin(gateway, '/upstream/rotate', {
        method: 'POST',
        body: JSON.stringify({ environment: 'development', key: newKey }),
      });
      const rotatedText = await rotated.text();
      assert.equal(rotated.status, 200, rotatedText);
      assert.ok(!rotatedText.includes(newKey) && !rotatedText.includes(oldKey));
      assert.equal(await chat(), 200);
      assert.equal(rotating.requests.at(-1)!.authorization, `Bearer ${newKey}`);
      // The new key lands in the source, so other replicas pick it up.
      assert.equal((await readFile(keyFile, 'utf8')).trim(), newKey);

      // The new key starts being refused: the old one, still in its grace window, serves.
      rotating.setValidKeys([oldKey]);
      assert.equal(await chat(), 200);
      assert.equal(rotating.requests.at(-1)!.authorization, `Bearer ${oldKey}`);

      for (const line of [...gateway.stdout, ...gateway.stderr]) {
        assert.ok(!line.includes(newKey) && !line.includes(oldKey), 'a key reached the log');
      }
      const tail = await runCli(['audit', 'tail', '-n', '50', '--json', '--data-dir', dataDir], {
        cwd,
      });
      const rotation = tail.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .find((e) => e.action === 'admin.upstream.rotate' && e.status === 200);
      assert.equal(rotation?.environment, 'development');
      assert.match(rotation?.keyName ?? '', /^fingerprint [0-9a-f]{12} -> [0-9a-f]{12}$/);
      assert.ok(!tail.stdout.includes(newKey) && !tail.stdout.includes(oldKey));
    } finally {
      await rotating.close();
    }
  });
});
