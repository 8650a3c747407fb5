import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { Agent, fetch as undiciFetch } from 'undici';
import { auditTail, waitForAuditEvent } from '../support/audit-tail.js';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';

// TLS termination, upstream retries and the circuit breaker, and graceful shutdown, through real
// gateway processes. Certificates are made with openssl at test time.
const UPSTREAM_KEY = canaryUpstreamKey();

let dir: string;

function makeCertificate(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

async function setUp(name: string, yaml: string[], upstreamUrl: string) {
  const cwd = join(dir, name);
  const dataDir = join(cwd, 'data');
  await mkdir(cwd, { recursive: true });
  await writeFile(join(cwd, 'mistral-guard.yaml'), `${yaml.join('\n')}\n`);
  const created = await runCli(
    ['keys', 'create', '--name', name, '--json', '--data-dir', dataDir],
    {
      cwd,
    },
  );
  assert.equal(created.code, 0, created.stderr);
  const key = JSON.parse(created.stdout).key as string;
  const gateway = await startGatewayProcess({
    dataDir,
    upstreamUrl,
    cwd,
    env: { MISTRAL_API_KEY: UPSTREAM_KEY, MISTRAL_GUARD_ENV: 'development' },
  });
  return { gateway, key, cwd, dataDir };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function chatBody(content = 'hello', extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    model: 'mistral-small-latest',
    messages: [{ role: 'user', content }],
    ...extra,
  });
}

/** The SHA-256 fingerprint of the certificate a TLS server presents. */
function presented(port: number, options: { maxVersion?: 'TLSv1.1' } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ...options,
    });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      resolve(cert?.fingerprint256 ?? '');
    });
    socket.once('error', reject);
  });
}

const children: Child[] = [];
const mocks: MockMistral[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mg-transport-'));
});

after(async () => {
  for (const child of children) await child.stop();
  for (const mock of mocks) await mock.close();
});

describe('TLS', () => {
  test('serves HTTPS with TLS 1.2 or later, HSTS on every answer, and reloads a new certificate', async () => {
    const mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
    mocks.push(mock);
    const first = makeCertificate('first');
    const { gateway, key } = await setUp(
      'tls',
      ['server:', '  tls:', `    cert: ${first.cert}`, `    key: ${first.key}`],
      mock.url,
    );
    children.push(gateway);
    assert.match(gateway.url, /^https:\/\//);
    const port = Number(new URL(gateway.url).port);
    const ca = await readFile(first.cert);
    const agent = new Agent({ connect: { ca } });
    const res = await undiciFetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: chatBody(),
      dispatcher: agent,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=\d+/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const probe = await undiciFetch(`${gateway.url}/healthz`, { dispatcher: agent });
    assert.ok(probe.headers.get('strict-transport-security'));
    await agent.close();

    await assert.rejects(presented(port, { maxVersion: 'TLSv1.1' }));

    const before = await presented(port);
    assert.equal(before, new X509Certificate(ca).fingerprint256);
    const second = makeCertificate('second');
    await writeFile(first.key, await readFile(second.key));
    await writeFile(first.cert, await readFile(second.cert));
    const expected = new X509Certificate(await readFile(second.cert)).fingerprint256;
    let now = before;
    for (let i = 0; i < 40 && now !== expected; i++) {
      await new Promise((r) => setTimeout(r, 250));
      now = await presented(port);
    }
    assert.equal(now, expected, 'the new certificate was never served');
  });
});

describe('upstream resilience', () => {
  test('a 503 before any byte is retried, and the client sees the answer', async () => {
    const mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
    mocks.push(mock);
    const { gateway, key } = await setUp('retry', [], mock.url);
    children.push(gateway);
    mock.setFault({ mode: '500', status: 503, count: 1 });
    const before = mock.requests.length;
    const res = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: chatBody(),
    });
    assert.equal(res.status, 200);
    assert.equal(mock.requests.length - before, 2);
  });

  test('a client that leaves while a retry waits ends the wait: no retry, recorded at once', async () => {
    const mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
    mocks.push(mock);
    const { gateway, key, cwd, dataDir } = await setUp('retry-abandoned', [], mock.url);
    children.push(gateway);
    const requests: Array<[string, RequestInit]> = [
      [
        '/v1/chat/completions',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: chatBody(),
        },
      ],
      ['/v1/models', { method: 'GET' }],
    ];
    for (const [path, init] of requests) {
      // The upstream asks for 4 s before a retry; the client gives up after 300 ms.
      mock.setFault({ mode: '500', status: 503, retryAfterSeconds: 4, count: 1 });
      const before = mock.requests.length;
      const requestId = `left-during-retry${path.replaceAll('/', '-')}`;
      const leaving = new AbortController();
      setTimeout(() => leaving.abort(), 300);
      await assert.rejects(
        fetch(gateway.url + path, {
          ...init,
          headers: {
            ...(init.headers as Record<string, string>),
            authorization: `Bearer ${key}`,
            'x-request-id': requestId,
          },
          signal: leaving.signal,
        }),
      );
      const event = await waitForAuditEvent({ dataDir, cwd }, (e) => e.requestId === requestId);
      assert.equal(event.errorCode, 'client_closed', path);
      assert.ok(event.latencyMs < 2000, `${path}: recorded after ${event.latencyMs} ms`);
      assert.equal(mock.requests.length - before, 1, `${path}: retried for a client that left`);
      mock.setFault(null);
    }
  });

  test('the circuit opens after repeated failures, fails fast, and closes after a probe', async () => {
    const port = await freePort();
    const { gateway, key } = await setUp(
      'breaker',
      ['upstream:', '  retries: 0', '  breakerThreshold: 2', '  breakerCooldownMs: 800'],
      `http://127.0.0.1:${port}`,
    );
    children.push(gateway);
    const send = () =>
      fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: chatBody(),
      });
    assert.equal((await send()).status, 502);
    assert.equal((await send()).status, 502);
    const fast = await send();
    assert.equal(fast.status, 503);
    assert.equal(((await fast.json()) as { code: string }).code, 'upstream_unavailable');
    assert.ok(Number(fast.headers.get('retry-after')) >= 1);
    const ready = await fetch(`${gateway.url}/readyz`);
    assert.equal(ready.status, 503);
    const checks = ((await ready.json()) as { checks: Record<string, { ok: boolean }> }).checks;
    assert.equal(checks.upstream!.ok, false);

    const mock = await startMockMistral({ validKeys: [UPSTREAM_KEY], port });
    mocks.push(mock);
    await new Promise((r) => setTimeout(r, 900));
    assert.equal((await send()).status, 200);
    assert.equal((await fetch(`${gateway.url}/readyz`)).status, 200);
  });
});

describe('circuit breaker probes', () => {
  test('a probe whose client leaves does not leave the circuit stuck half-open', async () => {
    const mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
    mocks.push(mock);
    const { gateway, key } = await setUp(
      'breaker-probe',
      ['upstream:', '  retries: 0', '  breakerThreshold: 2', '  breakerCooldownMs: 500'],
      mock.url,
    );
    children.push(gateway);
    const send = (signal?: AbortSignal) =>
      fetch(`${gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: chatBody(),
        ...(signal ? { signal } : {}),
      });
    mock.setFault({ mode: '500', count: 2 });
    assert.equal((await send()).status, 502);
    assert.equal((await send()).status, 502);
    assert.equal((await send()).status, 503, 'the circuit did not open');
    await new Promise((r) => setTimeout(r, 600));
    // The probe: a slow upstream, and a client that gives up first.
    mock.setFault({ mode: 'slow-first-byte', delayMs: 1500, count: 1 });
    await assert.rejects(send(AbortSignal.timeout(200)));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await send()).status, 200, 'the circuit stayed stuck after an abandoned probe');
  });
});

describe('shutdown', () => {
  test('SIGTERM lets a stream in flight finish, records it, and exits 0', async () => {
    const mock = await startMockMistral({ validKeys: [UPSTREAM_KEY], streamChunkDelayMs: 40 });
    mocks.push(mock);
    const { gateway, key, cwd, dataDir } = await setUp('shutdown', [], mock.url);
    const res = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        'x-request-id': 'draining-1',
      },
      body: chatBody(`[[reply:${'word '.repeat(30)}]] [[chunk:5]]`, { stream: true }),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    const exited = gateway.stop('SIGTERM');
    let text = '';
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    assert.match(text, /data: \[DONE\]/);
    assert.equal(await exited, 0);
    const event = (await auditTail({ dataDir, cwd })).find((e) => e.requestId === 'draining-1');
    assert.equal(event?.status, 200);
  });
});
