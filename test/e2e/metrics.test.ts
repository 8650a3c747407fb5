import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { keyFingerprint } from '../../src/secrets/key-shape.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';

// Prometheus metrics of a running gateway: requests counted by action and status, and the state
// an operator alerts on, an upstream key past its rotation period first among them.
const UPSTREAM_KEY = canaryUpstreamKey();
let mock: MockMistral | undefined;
let gateway: Child | undefined;

after(async () => {
  await gateway?.stop();
  await mock?.close();
});

test('metrics count requests and flag an upstream key older than the rotation period', async () => {
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
  const cwd = await mkdtemp(join(tmpdir(), 'mg-metrics-'));
  const dataDir = join(cwd, 'data');
  await mkdir(dataDir, { recursive: true });
  // The key was first seen 120 days ago; the period is 90 days.
  const fingerprint = keyFingerprint(new Secret(UPSTREAM_KEY, 'test'));
  const firstSeen = new Date(Date.now() - 120 * 86_400_000).toISOString();
  await writeFile(
    join(dataDir, 'upstream-keys.json'),
    JSON.stringify({ [fingerprint]: firstSeen }),
  );
  const created = await runCli(['keys', 'create', '--name', 'm', '--json', '--data-dir', dataDir], {
    cwd,
  });
  const key = JSON.parse(created.stdout).key as string;
  gateway = await startGatewayProcess({
    dataDir,
    upstreamUrl: mock.url,
    cwd,
    env: { MISTRAL_API_KEY: UPSTREAM_KEY, MISTRAL_GUARD_ENV: 'development' },
  });
  const chat = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'mistral-small-latest',
      messages: [{ role: 'user', content: 'hi' }],
    }),
  });
  assert.equal(chat.status, 200);
  await chat.arrayBuffer();
  const refused = await fetch(`${gateway.url}/v1/models`);
  assert.equal(refused.status, 401);

  const res = await fetch(`${gateway.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  assert.match(text, /mistral_guard_requests_total\{action="chat.complete",status="200"\} 1/);
  assert.match(text, /mistral_guard_requests_total\{action="models.list",status="401"\} 1/);
  assert.match(text, /mistral_guard_upstream_key_age_days\{environment="development"\} 120/);
  assert.match(text, /mistral_guard_upstream_key_rotation_overdue\{environment="development"\} 1/);
  assert.match(text, /mistral_guard_upstream_circuit_open 0/);
  assert.ok(!text.includes(UPSTREAM_KEY) && !text.includes(key), 'a key reached the metrics');

  // Readiness tells the live check's result and the warnings of each environment's key.
  const ready = (await (await fetch(`${gateway.url}/readyz`)).json()) as {
    checks: { upstreamKey: { ok: boolean; detail: string } };
  };
  assert.equal(ready.checks.upstreamKey.ok, true);
  assert.match(ready.checks.upstreamKey.detail, /^development: verified valid/);
  assert.match(ready.checks.upstreamKey.detail, /90/);
  assert.ok(!ready.checks.upstreamKey.detail.includes(UPSTREAM_KEY));
});
