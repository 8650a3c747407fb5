import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Pool } from 'undici';
import {
  type AuditRow,
  auditTail,
  errorBodyProblems,
  forbiddenMarkers,
  openFds,
  type Rig,
  seededRandom,
  settleFds,
  sleep,
  startRig,
  UNLIMITED_PROFILE,
  writeSummary,
} from './helpers.js';

// Every fault the loopback upstream can act out, mixed with normal requests, streamed and not,
// under concurrency. Each request carries its own id, so its answer and its audit event can be
// checked against what its fault calls for. Timeouts are short so a hung upstream costs 800 ms.
const REQUESTS = 300;
const CONCURRENCY = 24;
const SHUTDOWN_TIMEOUT_MS = 20_000;
/**
 * Descriptors the process may hold above its baseline once the load is over and idle upstream
 * connections have closed: none, since the baseline is taken with no connection open.
 */
const FD_SLACK = 0;

/**
 * One kind of upstream behaviour and what must come of it. `status` is what the client gets and
 * what its audit event records; a stream that had started when the fault struck has sent 200
 * already (`streamStatus`), must end with an in-band error `inBand` instead of `[DONE]`, and is
 * still audited with `status`.
 */
interface Mode {
  name: string;
  directive: string;
  status: number;
  streamStatus?: number;
  inBand?: string;
  errorCode?: string;
}

const MODES: Mode[] = [
  { name: 'normal', directive: '', status: 200 },
  { name: 'reset', directive: '[[fault:reset]]', status: 502, errorCode: 'upstream_error' },
  { name: 'hang', directive: '[[fault:hang]]', status: 504, errorCode: 'upstream_timeout' },
  { name: '500', directive: '[[fault:500]]', status: 502, errorCode: 'upstream_error' },
  { name: '502', directive: '[[fault:502]]', status: 502, errorCode: 'upstream_error' },
  { name: '503', directive: '[[fault:503]]', status: 502, errorCode: 'upstream_error' },
  { name: '504', directive: '[[fault:504]]', status: 504, errorCode: 'upstream_timeout' },
  { name: '429', directive: '[[fault:429]]', status: 429 },
  { name: 'malformed', directive: '[[fault:malformed]]', status: 502, errorCode: 'upstream_error' },
  {
    name: 'stream-cut',
    directive: '[[fault:stream-cut]]',
    status: 502,
    streamStatus: 200,
    inBand: 'upstream_error',
    errorCode: 'upstream_error',
  },
  {
    name: 'stream-stall',
    directive: '[[fault:stream-stall]]',
    status: 504,
    streamStatus: 200,
    inBand: 'upstream_timeout',
    errorCode: 'upstream_timeout',
  },
  { name: 'slow-first-byte', directive: '[[fault:slow-first-byte:300]]', status: 200 },
  {
    name: 'slow-first-byte-timeout',
    directive: '[[fault:slow-first-byte:1500]]',
    status: 504,
    errorCode: 'upstream_timeout',
  },
];

/** One planned request: its mode, streamed or not, and the id it is known by. */
interface Planned {
  id: string;
  mode: Mode;
  stream: boolean;
}

let rig: Rig;
let forbidden: string[];
let plan: Planned[] = [];
const figures = {
  requests: 0,
  faultsInjected: 0,
  byMode: {} as Record<string, number>,
  byStatus: {} as Record<string, number>,
  /** 502 and 504 answers: what these faults call for, counted to show they were exercised. */
  expected5xx: 0,
  unexpectedStatus: 0,
  inBandErrors: 0,
  requestsLost: 0,
  auditEventsMatched: 0,
  problems: [] as string[],
  fdBaseline: 0,
  fdPeak: 0,
  fdAfter: 0,
  fdDelta: 0,
  shutdownMs: 0,
  exitCode: null as number | null,
  durationMs: 0,
};

before(async () => {
  rig = await startRig('faults', [
    'server:',
    `  shutdownTimeoutMs: ${SHUTDOWN_TIMEOUT_MS}`,
    'upstream:',
    '  firstByteTimeoutMs: 800',
    '  idleTimeoutMs: 800',
    '  retries: 0',
    '  breakerThreshold: 0',
    ...UNLIMITED_PROFILE,
  ]);
  forbidden = forbiddenMarkers(rig);
  // Normal requests appear three times in the rotation: faults are mixed into real traffic.
  const rotation = [...MODES, MODES[0]!, MODES[0]!];
  const random = seededRandom(0xfa017);
  for (let i = 0; i < REQUESTS; i++) {
    const mode = rotation[i % rotation.length]!;
    const stream = Math.floor(i / rotation.length) % 2 === 1;
    plan.push({ id: `rel-${i}`, mode, stream });
  }
  // Shuffled with a fixed seed, so every concurrent window mixes modes the same way each run.
  plan = plan
    .map((p) => ({ p, k: random() }))
    .sort((a, b) => a.k - b.k)
    .map(({ p }) => p);
});

after(async () => {
  await rig?.stop();
  await writeSummary('faults', figures);
});

function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

/** A request as failures name it, e.g. `rel-17 stream-cut/stream`. */
function label(p: Planned): string {
  return `${p.id} ${p.mode.name}${p.stream ? '/stream' : ''}`;
}

/** The `data:` payloads of an SSE body, in order. */
function sseData(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).trim());
}

/** What is wrong with one answer, given what its mode calls for. */
function answerProblems(p: Planned, status: number, headers: Headers, text: string): string[] {
  const expected = (p.stream && p.mode.streamStatus) || p.mode.status;
  const problems: string[] = [];
  if (status !== expected) {
    figures.unexpectedStatus++;
    problems.push(`status ${status}, expected ${expected}`);
  }
  if (headers.get('x-request-id') !== p.id) problems.push('x-request-id not echoed');
  if (status >= 400) {
    problems.push(...errorBodyProblems(text, forbidden, p.id));
    if (status === 429 && !headers.get('retry-after')) problems.push('429 without Retry-After');
    return problems;
  }
  problems.push(...forbidden.filter((m) => text.includes(m)).map((m) => `leaks "${m}"`));
  if (p.stream) return [...problems, ...streamProblems(p, text)];
  let object: unknown;
  try {
    object = (JSON.parse(text) as { object?: unknown }).object;
  } catch {
    return [...problems, 'a 200 answer that is not JSON'];
  }
  if (object !== 'chat.completion') problems.push(`object ${String(object)}`);
  return problems;
}

/** A stream ends with `[DONE]`, or, when its mode breaks it, with one in-band error event. */
function streamProblems(p: Planned, text: string): string[] {
  const events = sseData(text);
  const last = events.at(-1) ?? '';
  if (!p.mode.inBand) return last === '[DONE]' ? [] : ['stream did not end with [DONE]'];
  const problems = errorBodyProblems(last, forbidden, p.id);
  if (events.includes('[DONE]')) problems.push('a broken stream sent [DONE]');
  if (events.length < 2) problems.push('no event before the in-band error');
  if (last.includes(`"code":"${p.mode.inBand}"`)) figures.inBandErrors++;
  else problems.push(`in-band error is not ${p.mode.inBand}`);
  return problems;
}

async function send(pool: Pool, p: Planned): Promise<string[]> {
  const content = `Tell me something. ${p.mode.directive}`.trim();
  try {
    const res = await pool.request({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: {
        authorization: `Bearer ${rig.key}`,
        'content-type': 'application/json',
        'x-request-id': p.id,
      },
      body: JSON.stringify({
        model: 'mistral-small-latest',
        messages: [{ role: 'user', content }],
        stream: p.stream,
      }),
    });
    const text = await res.body.text();
    count(figures.byStatus, String(res.statusCode));
    if (res.statusCode >= 500) figures.expected5xx++;
    const headers = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (typeof value === 'string') headers.set(name, value);
    }
    return answerProblems(p, res.statusCode, headers, text);
  } catch (error) {
    figures.requestsLost++;
    return [`lost: ${(error as Error).message}`];
  }
}

test('every upstream fault amid concurrent traffic gets the status it calls for', async () => {
  // The lowest of a few samples: a descriptor opened for a moment must not lift the baseline.
  figures.fdBaseline = openFds(rig.pid);
  for (let i = 0; i < 5; i++) {
    await sleep(100);
    figures.fdBaseline = Math.min(figures.fdBaseline, openFds(rig.pid));
  }
  const pool = new Pool(rig.gateway.url, {
    connections: CONCURRENCY,
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
  });
  const sampler = setInterval(() => {
    figures.fdPeak = Math.max(figures.fdPeak, openFds(rig.pid));
  }, 100);
  const started = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < plan.length) {
      const p = plan[next++]!;
      figures.requests++;
      count(figures.byMode, label(p).slice(p.id.length + 1));
      if (p.mode.directive) figures.faultsInjected++;
      const problems = await send(pool, p);
      if (problems.length && figures.problems.length < 25) {
        figures.problems.push(`${label(p)}: ${problems.join('; ')}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  figures.durationMs = Date.now() - started;
  clearInterval(sampler);
  await pool.close();

  assert.equal(figures.requests, REQUESTS);
  assert.deepEqual(figures.problems, []);
  assert.equal(figures.requestsLost, 0);
});

/** What is wrong with the one audit event of a request. */
function auditProblems(p: Planned, event: AuditRow): string[] {
  const wrong: string[] = [];
  if (event.status !== p.mode.status) wrong.push(`status ${event.status}, not ${p.mode.status}`);
  if (event.action !== 'chat.complete') wrong.push(`action ${String(event.action)}`);
  if (event.stream !== p.stream) wrong.push(`stream ${String(event.stream)}`);
  if (typeof event.keyId !== 'string') wrong.push('no keyId');
  if (typeof event.latencyMs !== 'number') wrong.push('no latencyMs');
  if (event.model !== 'mistral-small-latest') wrong.push(`model ${String(event.model)}`);
  if (p.mode.errorCode && event.errorCode !== p.mode.errorCode) {
    wrong.push(`errorCode ${String(event.errorCode)}, not ${p.mode.errorCode}`);
  }
  return wrong;
}

test('each request has one complete audit event with the status it ended with', async () => {
  const byId = new Map<string, AuditRow[]>();
  // The trail is written in batches: poll until every request is there, or give up.
  for (let attempt = 0; attempt < 40; attempt++) {
    byId.clear();
    for (const event of await auditTail(rig, 2000)) {
      byId.set(event.requestId, [...(byId.get(event.requestId) ?? []), event]);
    }
    if (plan.every((p) => byId.has(p.id))) break;
    await sleep(250);
  }
  const problems: string[] = [];
  for (const p of plan) {
    const events = byId.get(p.id) ?? [];
    if (events.length === 0) figures.requestsLost++;
    const wrong =
      events.length === 1 ? auditProblems(p, events[0]!) : [`${events.length} audit events`];
    if (wrong.length) problems.push(`${label(p)}: ${wrong.join(', ')}`);
    else figures.auditEventsMatched++;
  }
  figures.problems.push(...problems.slice(0, 25));
  assert.deepEqual(problems.slice(0, 25), []);
  assert.equal(figures.auditEventsMatched, REQUESTS);
});

test('once the load is over the gateway holds no more descriptors than before it', async () => {
  // Idle keep-alive connections to the upstream close by themselves within a few seconds.
  figures.fdAfter = await settleFds(rig.pid, figures.fdBaseline + FD_SLACK, 10_000);
  figures.fdDelta = figures.fdAfter - figures.fdBaseline;
  assert.ok(
    figures.fdDelta <= FD_SLACK,
    `${figures.fdAfter} descriptors open, ${figures.fdBaseline} before the load`,
  );
});

test('SIGTERM after the load exits 0 at once: nothing was left running', async () => {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), 8000);
  });
  const outcome = await Promise.race([rig.gateway.stop('SIGTERM'), timeout]);
  clearTimeout(timer);
  figures.shutdownMs = Date.now() - started;
  if (outcome === 'timeout') rig.gateway.proc.kill('SIGKILL');
  figures.exitCode = outcome === 'timeout' ? null : outcome;
  assert.equal(outcome, 0, `the gateway did not exit within 8 s of SIGTERM (${outcome})`);
  // The shutdown deadline is 20 s: anything near it means something was still held open.
  assert.ok(figures.shutdownMs < 5000, `exit took ${figures.shutdownMs} ms`);
});
