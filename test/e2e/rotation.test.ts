import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Secret } from '../../src/config/secret.js';
import { keyFingerprint } from '../../src/secrets/key-shape.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';

// Upstream key lifecycle on a real gateway process reading its key from a file: rotation while
// requests flow, a key revoked upstream at run time, a malformed key at start, and key age.
const ADMIN_TOKEN = `admin-${randomBytes(24).toString('base64url')}`;
const CONCURRENCY = 8;

let dir: string;
const children: Child[] = [];
const mocks: MockMistral[] = [];

interface Site {
  cwd: string;
  dataDir: string;
  keyFile: string;
  /** Runs the CLI in this site's directory, against its data and upstream. */
  cli(args: string[], env?: Record<string, string>): ReturnType<typeof runCli>;
}

/** A working directory whose config reads the development key from a file holding `key`. */
async function site(name: string, key: string, mock: MockMistral): Promise<Site> {
  const cwd = join(dir, name);
  const dataDir = join(cwd, 'data');
  await mkdir(dataDir, { recursive: true });
  const keyFile = join(cwd, 'mistral.key');
  await writeFile(keyFile, `${key}\n`, { mode: 0o600 });
  await writeFile(
    join(cwd, 'mistral-guard.yaml'),
    [
      'upstreamKey:',
      '  refreshSeconds: 0',
      '  sources:',
      `    development: { source: file, path: ${keyFile} }`,
      // Continuous traffic is the point here, so the development profile's limits are lifted.
      'profiles:',
      '  development:',
      '    limits: { rpm: null, tpm: null, concurrency: null, dailyTokens: null }',
      '',
    ].join('\n'),
  );
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli([...args, '--data-dir', dataDir], {
      cwd,
      env: { MISTRAL_BASE_URL: mock.url, MISTRAL_GUARD_ENV: 'development', ...env },
    });
  return { cwd, dataDir, keyFile, cli };
}

async function serve(s: Site, mock: MockMistral): Promise<Child> {
  const gateway = await startGatewayProcess({
    dataDir: s.dataDir,
    upstreamUrl: mock.url,
    cwd: s.cwd,
    env: { MISTRAL_GUARD_ENV: 'development', MISTRAL_GUARD_ADMIN_TOKEN: ADMIN_TOKEN },
  });
  children.push(gateway);
  return gateway;
}

async function appKey(s: Site): Promise<string> {
  const created = await s.cli(['keys', 'create', '--name', 'app', '--json']);
  assert.equal(created.code, 0, created.stderr);
  return (JSON.parse(created.stdout) as { key: string }).key;
}

async function chat(gateway: Child, key: string): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content: 'hi' }],
    }),
  });
  const body = (await res.json()) as { code?: string };
  return { status: res.status, code: body.code };
}

async function mockWith(keys: string[]): Promise<MockMistral> {
  const mock = await startMockMistral({ validKeys: keys });
  mocks.push(mock);
  return mock;
}

/** Waits until `check` holds, polling; fails after `ms`. */
async function eventually(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Gateway log lines as JSON; lines that are not JSON are skipped. */
function logEvents(gateway: Child): Array<Record<string, unknown>> {
  return [...gateway.stdout, ...gateway.stderr].flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

function assertNoKeyIn(gateway: Child, ...keys: string[]): void {
  for (const line of [...gateway.stdout, ...gateway.stderr]) {
    for (const key of keys) assert.ok(!line.includes(key), 'an upstream key reached the log');
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mg-rotation-'));
});

after(async () => {
  for (const child of children) await child.stop();
  for (const mock of mocks) await mock.close();
  await rm(dir, { recursive: true, force: true });
});

describe('upstream key rotation under load', () => {
  for (const via of ['upstream rotate + SIGHUP', 'admin API'] as const) {
    test(`no request fails while the key is rotated (${via})`, async () => {
      const oldKey = canaryUpstreamKey();
      const newKey = canaryUpstreamKey();
      const mock = await mockWith([oldKey]);
      const s = await site(via === 'admin API' ? 'load-admin' : 'load-cli', oldKey, mock);
      const key = await appKey(s);
      const gateway = await serve(s, mock);

      const failures: string[] = [];
      let sent = 0;
      let running = true;
      const loop = async () => {
        while (running) {
          try {
            const res = await chat(gateway, key);
            sent++;
            if (res.status !== 200) failures.push(`${res.status} ${res.code}`);
          } catch (error) {
            failures.push(String(error));
          }
        }
      };
      const loops = Array.from({ length: CONCURRENCY }, loop);
      const usedNew = () => mock.requests.some((r) => r.authorization === `Bearer ${newKey}`);

      await eventually(() => sent >= 50, 'traffic on the old key');
      // Mistral issues the new key; both work until the old one is revoked.
      mock.setValidKeys([oldKey, newKey]);
      if (via === 'admin API') {
        const res = await fetch(`${gateway.url}/admin/upstream/rotate`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ environment: 'development', key: newKey }),
        });
        assert.equal(res.status, 200, await res.text());
      } else {
        const rotated = await s.cli(['upstream', 'rotate'], { MISTRAL_API_KEY_NEW: newKey });
        assert.equal(rotated.code, 0, rotated.stderr);
        assert.ok(!rotated.stdout.includes(newKey) && !rotated.stderr.includes(newKey));
        gateway.proc.kill('SIGHUP');
      }
      assert.equal((await readFile(s.keyFile, 'utf8')).trim(), newKey);
      await eventually(usedNew, 'a request with the new key');
      const switchedAt = sent;
      await eventually(() => sent >= switchedAt + 50, 'traffic on the new key');

      // The old key is revoked upstream: from here on no request may carry it.
      mock.setValidKeys([newKey]);
      const revokedAt = mock.requests.length;
      const before = sent;
      await eventually(() => sent >= before + 100, 'traffic after the revocation');
      running = false;
      await Promise.all(loops);

      assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
      const auths = mock.requests
        .filter((r) => r.path.startsWith('/v1/chat'))
        .map((r) => r.authorization);
      const firstNew = auths.indexOf(`Bearer ${newKey}`);
      assert.ok(firstNew > 0, 'the old key served before the switch');
      assert.ok(auths.slice(0, firstNew).every((a) => a === `Bearer ${oldKey}`));
      const late = mock.requests.slice(revokedAt).map((r) => r.authorization);
      assert.ok(late.length >= 100);
      assert.ok(
        late.every((a) => a === `Bearer ${newKey}`),
        'a request used the revoked key',
      );
      assertNoKeyIn(gateway, oldKey, newKey);
    });
  }
});

describe('an upstream key revoked at run time', () => {
  test('no fallback: 503 upstream_auth_failed and an alert naming the environment', async () => {
    const upstreamKey = canaryUpstreamKey();
    const mock = await mockWith([upstreamKey]);
    const s = await site('revoked', upstreamKey, mock);
    const key = await appKey(s);
    const gateway = await serve(s, mock);
    assert.equal((await chat(gateway, key)).status, 200);

    mock.setValidKeys([]);
    assert.deepEqual(await chat(gateway, key), { status: 503, code: 'upstream_auth_failed' });
    assert.deepEqual(await chat(gateway, key), { status: 503, code: 'upstream_auth_failed' });
    await eventually(
      () => logEvents(gateway).some((e) => e.alert === 'upstream_key'),
      'the alert line',
    );
    const alerts = logEvents(gateway).filter((e) => e.alert === 'upstream_key');
    assert.equal(alerts.length, 1, 'a burst of refusals raises one alert');
    assert.ok((alerts[0]!.level as number) >= 40, 'the alert is a warning or an error');
    assert.equal(alerts[0]!.environment, 'development');
    assert.equal(alerts[0]!.fingerprint, keyFingerprint(new Secret(upstreamKey, 'test')));

    const ready = await fetch(`${gateway.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(JSON.stringify(await ready.json()), /development: .*key_invalid/);
    assertNoKeyIn(gateway, upstreamKey);
  });

  test('with a fallback: the previous key serves, with an alert', async () => {
    const oldKey = canaryUpstreamKey();
    const newKey = canaryUpstreamKey();
    const mock = await mockWith([oldKey, newKey]);
    const s = await site('fallback', oldKey, mock);
    const key = await appKey(s);
    const gateway = await serve(s, mock);
    const rotated = await fetch(`${gateway.url}/admin/upstream/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ environment: 'development', key: newKey }),
    });
    assert.equal(rotated.status, 200);
    assert.equal((await chat(gateway, key)).status, 200);
    assert.equal(mock.requests.at(-1)!.authorization, `Bearer ${newKey}`);

    // The new key is revoked upstream: the old one, still in its grace window, takes over.
    mock.setValidKeys([oldKey]);
    assert.equal((await chat(gateway, key)).status, 200);
    assert.equal(mock.requests.at(-1)!.authorization, `Bearer ${oldKey}`);
    assert.equal((await chat(gateway, key)).status, 200);
    assert.equal(mock.requests.at(-1)!.authorization, `Bearer ${oldKey}`);
    await eventually(
      () => logEvents(gateway).some((e) => e.alert === 'upstream_key'),
      'the alert line',
    );
    const alert = logEvents(gateway).find((e) => e.alert === 'upstream_key')!;
    assert.equal(alert.environment, 'development');
    assert.ok((alert.level as number) >= 40);

    // Both revoked: nothing left to fall back to.
    mock.setValidKeys([]);
    assert.deepEqual(await chat(gateway, key), { status: 503, code: 'upstream_auth_failed' });
    assertNoKeyIn(gateway, oldKey, newKey);
  });
});

describe('a malformed upstream key at start', () => {
  test('stops start-up with exit 2 and a message naming the source, not the value', async () => {
    const mock = await mockWith([]);
    const malformed = `sk-${randomBytes(12).toString('hex')}`;
    const s = await site('malformed', malformed, mock);
    const started = await s.cli(['serve', '--port', '0']);
    assert.equal(started.code, 2, started.stderr);
    assert.match(started.stderr, /upstreamKey\.sources\.development/);
    assert.match(started.stderr, /32 letters and digits|shape/i);
    assert.ok(!started.stderr.includes(malformed) && !started.stdout.includes(malformed));
  });
});

describe('upstream key age', () => {
  test('a key first seen more than rotationDays ago is reported and logged', async () => {
    const upstreamKey = canaryUpstreamKey();
    const mock = await mockWith([upstreamKey]);
    const s = await site('age', upstreamKey, mock);
    const fingerprint = keyFingerprint(new Secret(upstreamKey, 'test'));
    const firstSeen = new Date(Date.now() - 120 * 86_400_000).toISOString();
    await writeFile(
      join(s.dataDir, 'upstream-keys.json'),
      JSON.stringify({ [fingerprint]: firstSeen }),
    );

    const status = await s.cli(['upstream', 'status', '--json']);
    const development = (JSON.parse(status.stdout) as Record<string, Record<string, unknown>>)
      .development!;
    assert.equal(development.firstSeenAt, firstSeen);
    assert.equal(development.ageDays, 120);
    assert.match(String(development.warnings), /past the rotation period of 90 days/);

    const text = await s.cli(['upstream', 'status']);
    assert.match(text.stderr, /warning: .*120 days ago, past the rotation period/);

    const gateway = await serve(s, mock);
    await eventually(
      () =>
        logEvents(gateway).some(
          (e) => e.level === 40 && String(e.warning).includes('rotation period'),
        ),
      'the key age warning',
    );

    // A rotated key starts a new age; the old date stays on file for the old fingerprint.
    const newKey = canaryUpstreamKey();
    mock.setValidKeys([upstreamKey, newKey]);
    const rotated = await s.cli(['upstream', 'rotate', '--json'], { MISTRAL_API_KEY_NEW: newKey });
    assert.equal(rotated.code, 0, rotated.stderr);
    const after = await s.cli(['upstream', 'status', '--json']);
    const now = (JSON.parse(after.stdout) as Record<string, Record<string, unknown>>).development!;
    assert.equal(now.ageDays, 0);
    assert.deepEqual(now.warnings, []);
    const file = JSON.parse(await readFile(join(s.dataDir, 'upstream-keys.json'), 'utf8'));
    assert.equal(file[fingerprint], firstSeen);
    assertNoKeyIn(gateway, upstreamKey, newKey);
  });
});
