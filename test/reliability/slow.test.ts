import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Pool } from 'undici';
import {
  auditTail,
  errorAnswerProblems,
  forbiddenMarkers,
  parseRawAnswer,
  type Rig,
  rawRequest,
  sleep,
  startRig,
  UNLIMITED_PROFILE,
  writeSummary,
} from './helpers.js';

// Slow and oversized clients against the real server: headers that trickle in, bodies that
// trickle in, connections that never send a byte, header blocks past the limit. The gateway must
// cut each of them off near its deadline and keep serving everyone else meanwhile.
const HEADERS_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 1500;
/** Node checks deadlines on an interval, and this machine is busy: room on top of a deadline. */
const LATE_MS = 1500;
const SLOW_CLIENTS = 30;
/** The longest a well-behaved request may take while slow clients hold connections. */
const STEADY_MAX_MS = 1500;

let rig: Rig;
let forbidden: string[];
const figures = {
  slowClients: 0,
  cutOff: 0,
  answered408: 0,
  closedSilently: 0,
  slowestCutMs: {} as Record<string, number>,
  oversizedRefused: 0,
  steadyRequests: 0,
  steadyFailures: 0,
  steadyMaxMs: 0,
  requestsLost: 0,
  fiveXX: 0,
};

before(async () => {
  rig = await startRig('slow', [
    'server:',
    `  headersTimeoutMs: ${HEADERS_TIMEOUT_MS}`,
    `  requestTimeoutMs: ${REQUEST_TIMEOUT_MS}`,
    ...UNLIMITED_PROFILE,
  ]);
  forbidden = forbiddenMarkers(rig);
});

after(async () => {
  await rig?.stop();
  await writeSummary('slow', figures);
});

/** How a trickling connection ended. */
interface Trickled {
  /** The server closed it (rather than the test giving up after `maxMs`). */
  cut: boolean;
  ms: number;
  raw: Buffer;
}

/**
 * Opens a connection, writes `head`, then one `drip` every `everyMs` until the server closes
 * the connection or `maxMs` passes.
 */
function trickle(head: string, drip: string, everyMs = 100, maxMs = 8000): Promise<Trickled> {
  const { hostname, port } = new URL(rig.gateway.url);
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let cut = true;
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {});
    if (head) socket.write(head);
    const dripping = drip ? setInterval(() => socket.write(drip, () => {}), everyMs) : null;
    const giveUp = setTimeout(() => {
      cut = false;
      socket.destroy();
    }, maxMs);
    socket.on('close', () => {
      if (dripping) clearInterval(dripping);
      clearTimeout(giveUp);
      resolve({ cut, ms: Date.now() - started, raw: Buffer.concat(chunks) });
    });
  });
}

/** Well-behaved requests, one after another, until `stop` aborts; returns their latencies. */
async function steadyClient(stop: AbortSignal): Promise<number[]> {
  const pool = new Pool(rig.gateway.url, { connections: 2 });
  const latencies: number[] = [];
  while (!stop.aborted) {
    const started = Date.now();
    try {
      const res = await pool.request({
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { authorization: `Bearer ${rig.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'mistral-small-latest',
          messages: [{ role: 'user', content: 'are you there?' }],
        }),
      });
      await res.body.text();
      if (res.statusCode !== 200) figures.steadyFailures++;
      if (res.statusCode >= 500) figures.fiveXX++;
    } catch {
      figures.requestsLost++;
    }
    latencies.push(Date.now() - started);
    await sleep(25);
  }
  await pool.close();
  return latencies;
}

/** Runs `attack` while a steady client is served, and checks the steady client was. */
async function whileServing<T>(attack: () => Promise<T>): Promise<T> {
  const failuresBefore = figures.steadyFailures + figures.requestsLost;
  const stop = new AbortController();
  const steady = steadyClient(stop.signal);
  const result = await attack().finally(() => stop.abort());
  const latencies = await steady;
  figures.steadyRequests += latencies.length;
  figures.steadyMaxMs = Math.max(figures.steadyMaxMs, ...latencies);
  assert.ok(latencies.length >= 5, `only ${latencies.length} requests served meanwhile`);
  assert.equal(figures.steadyFailures + figures.requestsLost, failuresBefore);
  assert.ok(Math.max(...latencies) < STEADY_MAX_MS, `a request took ${Math.max(...latencies)} ms`);
  return result;
}

/** Checks a group of slow clients was cut off in `[minMs, maxMs]`, each with a 408 or nothing. */
function assertCutOff(kind: string, results: Trickled[], minMs: number, maxMs: number): void {
  figures.slowClients += results.length;
  figures.slowestCutMs[kind] = Math.max(...results.map((r) => r.ms));
  for (const r of results) {
    assert.ok(r.cut, `a ${kind} client was still connected after ${r.ms} ms`);
    figures.cutOff++;
    assert.ok(r.ms >= minMs, `a ${kind} client was cut after ${r.ms} ms, before its deadline`);
    assert.ok(r.ms <= maxMs, `a ${kind} client was cut only after ${r.ms} ms`);
    const answer = parseRawAnswer(r.raw);
    if (answer.status === null) {
      figures.closedSilently++;
      continue;
    }
    figures.answered408++;
    assert.equal(answer.status, 408);
    const problems = errorAnswerProblems(
      408,
      answer.headers['content-type'],
      answer.body,
      forbidden,
    );
    assert.deepEqual(problems, []);
    assert.match(answer.body, /"code":"request_timeout"/);
  }
}

const bodyIds = Array.from({ length: SLOW_CLIENTS }, (_, i) => `slow-body-${i}`);
let bodyResults: Trickled[] = [];

describe('slow clients', () => {
  test('header tricklers are cut off at the header deadline while others are served', async () => {
    const results = await whileServing(() =>
      Promise.all(
        Array.from({ length: SLOW_CLIENTS }, (_, i) =>
          trickle(
            'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n',
            `X-Slow-${i}: a\r\n`,
          ),
        ),
      ),
    );
    assertCutOff('header-trickle', results, HEADERS_TIMEOUT_MS - 100, HEADERS_TIMEOUT_MS + LATE_MS);
  });

  test('connections that never send a byte are closed at the header deadline', async () => {
    const results = await whileServing(() =>
      Promise.all(Array.from({ length: SLOW_CLIENTS }, () => trickle('', ''))),
    );
    assertCutOff('idle', results, HEADERS_TIMEOUT_MS - 100, HEADERS_TIMEOUT_MS + LATE_MS);
  });

  test('body tricklers are cut off at the request deadline while others are served', async () => {
    bodyResults = await whileServing(() =>
      Promise.all(
        bodyIds.map((id) =>
          trickle(
            [
              'POST /v1/chat/completions HTTP/1.1',
              'Host: 127.0.0.1',
              `Authorization: Bearer ${rig.key}`,
              'Content-Type: application/json',
              `X-Request-Id: ${id}`,
              'Content-Length: 2000',
              '',
              '{',
            ].join('\r\n'),
            ' ',
          ),
        ),
      ),
    );
    // Past the header deadline: only the whole-request deadline may end these.
    assertCutOff(
      'body-trickle',
      bodyResults,
      REQUEST_TIMEOUT_MS - 100,
      REQUEST_TIMEOUT_MS + LATE_MS,
    );
  });

  test('a body cut off by the deadline is answered and audited as 408 under its own request id', async () => {
    assert.equal(bodyResults.length, SLOW_CLIENTS);
    let events = await auditTail(rig, 500);
    for (let i = 0; i < 20 && !bodyIds.every((id) => events.some((e) => e.requestId === id)); i++) {
      await sleep(250);
      events = await auditTail(rig, 500);
    }
    for (const [i, id] of bodyIds.entries()) {
      const answer = parseRawAnswer(bodyResults[i]!.raw);
      assert.equal(JSON.parse(answer.body).request_id, id);
      const event = events.filter((e) => e.requestId === id);
      assert.equal(event.length, 1, `${event.length} audit events for ${id}`);
      assert.equal(event[0]!.status, 408);
      assert.equal(event[0]!.errorCode, 'request_timeout');
    }
  });
});

describe('oversized headers', () => {
  test('oversized header blocks get a Mistral-shaped 431 while others are served', async () => {
    const requests = Array.from({ length: 40 }, (_, i) => {
      const lines =
        i % 2 === 0
          ? [`X-Big: ${'h'.repeat(17_000 + i * 1000)}`]
          : Array.from({ length: 3000 }, (_, n) => `X-Many-${n}: ${n}`);
      return [
        'POST /v1/chat/completions HTTP/1.1',
        'Host: 127.0.0.1',
        `Authorization: Bearer ${rig.key}`,
        'Content-Type: application/json',
        'Content-Length: 2',
        ...lines,
        '',
        '{}',
      ].join('\r\n');
    });
    // A few rounds, so the steady client is measured across the whole attack.
    const answers = await whileServing(async () => {
      const all = [];
      for (let round = 0; round < 5; round++) {
        const sent = requests.map((bytes) => rawRequest(rig.gateway.url, bytes, { waitMs: 5000 }));
        all.push(...(await Promise.all(sent)));
        await sleep(200);
      }
      return all;
    });
    for (const answer of answers) {
      assert.equal(answer.status, 431);
      const problems = errorAnswerProblems(
        431,
        answer.headers['content-type'],
        answer.body,
        forbidden,
      );
      assert.deepEqual(problems, []);
      figures.oversizedRefused++;
    }
  });

  test('the gateway is still healthy afterwards', async () => {
    assert.equal(rig.gateway.proc.exitCode, null);
    assert.equal((await fetch(`${rig.gateway.url}/healthz`)).status, 200);
  });
});
