// Shared pieces of the reliability suite: a gateway process against the loopback upstream, what
// the kernel says about that process (memory, descriptors), raw HTTP for what a well-behaved
// client cannot send, the checks every error answer must pass, and the summary each file writes.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from '../support/processes.js';

/** A gateway process, its upstream and one key for it, all torn down by `stop`. */
export interface Rig {
  gateway: Child;
  mock: MockMistral;
  /** The virtual key the app sends. */
  key: string;
  /** The real key only the gateway and the upstream know: it must never reach a client. */
  upstreamKey: string;
  dir: string;
  dataDir: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Profile lines that turn the per-key limits off, so what a test sees is the behaviour under
 * test and not a 429 from the key's own rate limit.
 */
export const UNLIMITED_PROFILE = [
  'profiles:',
  '  development:',
  '    limits: { rpm: null, tpm: null, concurrency: null, dailyTokens: null }',
];

/**
 * Starts the loopback upstream and a gateway process configured by `yaml`, and creates a key.
 * The log level must stay at `info`: the process is known to be up by its `listening` line.
 *
 * @example
 *   const rig = await startRig('faults', ['upstream:', '  retries: 0', ...UNLIMITED_PROFILE]);
 */
export async function startRig(name: string, yaml: string[]): Promise<Rig> {
  const upstreamKey = canaryUpstreamKey();
  const dir = await mkdtemp(join(tmpdir(), `mg-rel-${name}-`));
  const dataDir = join(dir, 'data');
  await writeFile(join(dir, 'mistral-guard.yaml'), `${yaml.join('\n')}\n`);
  const mock = await startMockMistral({ validKeys: [upstreamKey], record: false });
  const args = ['keys', 'create', '--name', name, '--json', '--data-dir', dataDir];
  const created = await runCli(args, { cwd: dir });
  assert.equal(created.code, 0, created.stderr);
  const gateway = await startGatewayProcess({
    dataDir,
    upstreamUrl: mock.url,
    cwd: dir,
    env: { MISTRAL_API_KEY: upstreamKey, MISTRAL_GUARD_ENV: 'development' },
  });
  return {
    gateway,
    mock,
    key: JSON.parse(created.stdout).key as string,
    upstreamKey,
    dir,
    dataDir,
    pid: gateway.proc.pid!,
    async stop() {
      await gateway.stop();
      await mock.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The resident set size of a process, in bytes, as the kernel counts it. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  assert.ok(kb, `no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}

/** How many file descriptors a process holds open (sockets, files, pipes). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Polls the descriptor count until it is at most `limit`, for up to `timeoutMs`; returns the
 * last count. Idle keep-alive connections to the upstream close on their own after a few
 * seconds, so a count above the baseline right after a load is not yet a leak.
 */
export async function settleFds(pid: number, limit: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  let count = openFds(pid);
  while (count > limit && Date.now() < until) {
    await sleep(200);
    count = openFds(pid);
  }
  return count;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A small seeded generator (mulberry32): the same seed gives the same cases, so a failure found
 * once can be replayed with `MG_FUZZ_SEED`.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An answer read off a raw socket: null fields when the server closed without one. */
export interface RawAnswer {
  status: number | null;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (rather than the client giving up). */
  closed: boolean;
  ms: number;
}

/**
 * Writes `bytes` on a fresh connection and reads until the server closes it or `waitMs` passes.
 * With `halfClose`, the client ends its side right after writing: a body shorter than its
 * Content-Length then ends early.
 */
export function rawRequest(
  url: string,
  bytes: Buffer | string,
  options: { waitMs?: number; halfClose?: boolean } = {},
): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port), allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      resolve({ ...parseRawAnswer(Buffer.concat(chunks)), closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => {
      socket.destroy();
    }, options.waitMs ?? 5000);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      // A complete answer is enough: the connection may stay open for keep-alive.
      if (answerComplete(Buffer.concat(chunks))) socket.destroy();
    });
    socket.on('end', () => {
      closed = true;
      socket.end();
    });
    socket.on('error', () => {
      closed = true;
    });
    socket.on('close', done);
    socket.write(bytes, () => {
      if (options.halfClose) socket.end();
    });
  });
}

function answerComplete(raw: Buffer): boolean {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(raw.subarray(0, end).toString('latin1'))?.[1];
  return length !== undefined && raw.length >= end + 4 + Number(length);
}

/** Splits a raw HTTP/1.1 answer into status, headers and body (the first answer only). */
export function parseRawAnswer(raw: Buffer): Omit<RawAnswer, 'closed' | 'ms'> {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (end === -1 || !match) return { status: null, headers: {}, body: '' };
  const headers: Record<string, string> = {};
  for (const line of text.slice(0, end).split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length']);
  const rest = raw.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  const body = (Number.isFinite(length) ? rest.subarray(0, length) : rest).toString('utf8');
  return { status: Number(match[1]), headers, body };
}

/** What must never appear in an answer: internals of the gateway and the way to the upstream. */
export function forbiddenMarkers(rig: Rig): string[] {
  const upstream = new URL(rig.mock.url);
  return [
    rig.upstreamKey,
    upstream.host,
    `:${upstream.port}`,
    '/work/',
    'node_modules',
    '.ts:',
    '.js:',
    '    at ',
    'Error:',
  ];
}

/**
 * The problems of one error answer, empty when it is a Mistral-shaped 4xx that gives nothing
 * away. `requestId`, when given, is the id the body must carry.
 */
export function errorAnswerProblems(
  status: number,
  contentType: string | undefined,
  text: string,
  forbidden: string[],
  requestId?: string,
): string[] {
  const problems = status < 400 || status > 499 ? [`status ${status}`] : [];
  if (!contentType?.startsWith('application/json')) problems.push(`content-type ${contentType}`);
  return [...problems, ...errorBodyProblems(text, forbidden, requestId)];
}

/**
 * The problems of an error body, whatever its status or channel (an answer, an SSE event): it
 * must be Mistral's error object, carry the request id and name nothing internal.
 */
export function errorBodyProblems(text: string, forbidden: string[], requestId?: string): string[] {
  const problems = forbidden.filter((m) => text.includes(m)).map((m) => `leaks "${m}"`);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    return [...problems, 'body is not JSON'];
  }
  if (body.object !== 'error') problems.push('object is not "error"');
  for (const field of ['message', 'type', 'code', 'request_id']) {
    if (typeof body[field] !== 'string' || body[field] === '') problems.push(`no ${field}`);
  }
  if (requestId !== undefined && body.request_id !== requestId) {
    problems.push(`request_id ${String(body.request_id)} is not ${requestId}`);
  }
  return problems;
}

/** One audit event as `audit tail --json` prints it. */
export type AuditRow = Record<string, unknown> & { requestId: string; status: number };

/** The latest `n` audit events of a rig, read through the CLI as an operator would. */
export async function auditTail(rig: Rig, n: number): Promise<AuditRow[]> {
  const tail = await runCli(
    ['audit', 'tail', '--json', '-n', String(n), '--data-dir', rig.dataDir],
    {
      cwd: rig.dir,
    },
  );
  assert.equal(tail.code, 0, tail.stderr);
  return tail.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as AuditRow);
}

/** Where every file of the suite writes its summary; one JSON file per test file. */
export const RESULTS_DIR = join(tmpdir(), 'mistral-guard-reliability');

/**
 * Writes one file's figures to `RESULTS_DIR/<name>.json`, folds every file's figures into
 * `summary.json` beside it, and prints both paths and the figures.
 */
export async function writeSummary(name: string, figures: Record<string, unknown>): Promise<void> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const own = { file: name, finishedAt: new Date().toISOString(), ...figures };
  await writeAtomic(join(RESULTS_DIR, `${name}.json`), own);
  const all: Record<string, unknown> = {};
  for (const entry of (await readdir(RESULTS_DIR)).sort()) {
    if (!entry.endsWith('.json') || entry === 'summary.json') continue;
    try {
      all[entry.slice(0, -5)] = JSON.parse(await readFile(join(RESULTS_DIR, entry), 'utf8'));
    } catch {
      // A file another test is writing right now is read on its own next summary.
    }
  }
  const summaryPath = join(RESULTS_DIR, 'summary.json');
  await writeAtomic(summaryPath, all);
  process.stdout.write(
    `reliability ${name}: ${join(RESULTS_DIR, `${name}.json`)} (all: ${summaryPath})\n` +
      `${JSON.stringify(own, null, 2)}\n`,
  );
}

async function writeAtomic(path: string, value: unknown): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(temp, path);
}
