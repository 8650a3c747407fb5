import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockMistral, startMockMistral } from './mock-mistral.js';
import { type Child, runCli, startGatewayProcess } from './processes.js';

// biome-ignore lint/suspicious/noExplicitAny: answers and audit events are read as loose JSON
export type Json = Record<string, any>;

/** An answer of the gateway, read whole. */
export interface Answer {
  status: number;
  text: string;
  requestId: string;
  headers: Headers;
  /** The body parsed, when it is JSON; `{}` otherwise (an event stream). */
  json: Json;
}

/**
 * One gateway process in a data directory of its own, in front of a loopback upstream, for the
 * end-to-end tests: the CLI run against the same directory, requests, and the audit trail read
 * back as an operator would.
 */
export class GatewaySession {
  private constructor(
    readonly dir: string,
    readonly dataDir: string,
    readonly mock: MockMistral,
    readonly gateway: Child,
  ) {}

  /** Writes `yaml` as the config file and starts the upstream and the gateway. */
  static async start(options: {
    yaml: string;
    upstreamKey: string;
    env?: Record<string, string>;
  }): Promise<GatewaySession> {
    const dir = await mkdtemp(join(tmpdir(), 'mg-e2e-'));
    const dataDir = join(dir, 'data');
    await writeFile(join(dir, 'mistral-guard.yaml'), options.yaml);
    const mock = await startMockMistral({ validKeys: [options.upstreamKey] });
    const gateway = await startGatewayProcess({
      dataDir,
      upstreamUrl: mock.url,
      cwd: dir,
      env: { MISTRAL_API_KEY: options.upstreamKey, ...options.env },
    });
    return new GatewaySession(dir, dataDir, mock, gateway);
  }

  get url(): string {
    return this.gateway.url;
  }

  cli(args: string[]) {
    return runCli([...args, '--data-dir', this.dataDir], { cwd: this.dir });
  }

  /** `keys create --name NAME ...args --json`; fails the test when the CLI does. */
  async createKey(name: string, args: string[] = []): Promise<{ id: string; key: string }> {
    const created = await this.cli(['keys', 'create', '--name', name, ...args, '--json']);
    assert.equal(created.code, 0, created.stderr);
    const { id, key } = JSON.parse(created.stdout);
    return { id, key };
  }

  /** POSTs `body` to a gateway path (chat completions by default) with `key`. */
  async post(key: string, body: unknown, path = '/v1/chat/completions'): Promise<Answer> {
    const res = await fetch(`${this.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    const isJson = res.headers.get('content-type')?.includes('application/json') ?? false;
    return {
      status: res.status,
      text,
      requestId: res.headers.get('x-request-id') ?? '',
      headers: res.headers,
      json: isJson ? (JSON.parse(text) as Json) : {},
    };
  }

  /** The audit event of a request as `audit tail --json` prints it, and its line of text. */
  async auditEvent(requestId: string): Promise<{ event: Json; line: string }> {
    const tail = await this.cli(['audit', 'tail', '-n', '50', '--json']);
    assert.equal(tail.code, 0, tail.stderr);
    const line = tail.stdout
      .split('\n')
      .find((l) => l.trim() !== '' && (JSON.parse(l) as Json).requestId === requestId);
    assert.ok(line, `no audit event for ${requestId}`);
    return { event: JSON.parse(line) as Json, line };
  }

  async stop(): Promise<void> {
    await this.gateway.stop();
    await this.mock.close();
  }
}
