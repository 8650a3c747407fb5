import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openAuditLog } from '../../src/audit/sqlite-sink.js';
import { sampleEvent, tempDataDir } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
// An absolute loader path, so the CLI can run from an empty directory (no stray config file).
const TSX = import.meta.resolve('tsx');

async function cli(cwd: string, args: string[]) {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const [code] = await once(child, 'exit');
  return { code: code as number | null, stdout, stderr };
}

async function seed(dir: string, count: number): Promise<void> {
  const audit = await openAuditLog(dir);
  for (let i = 0; i < count; i++) {
    const failed = i % 3 === 2;
    await audit.record(
      sampleEvent(`req_${i}`, {
        status: failed ? 429 : 200,
        success: !failed,
        errorCode: failed ? 'rate_limited' : null,
        model: failed ? 'evil\u001b[31mred' : 'mistral-small-latest',
      }),
    );
  }
  await audit.close();
}

test('audit tail --json prints the newest events as one JSON object per line', async (t) => {
  const dir = tempDataDir(t);
  await seed(dir, 8);
  const result = await cli(dir, ['--data-dir', dir, 'audit', 'tail', '-n', '5', '--json']);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 5);
  const events = lines.map((line) => JSON.parse(line) as { requestId: string; seq: number });
  assert.deepEqual(
    events.map((e) => e.requestId),
    ['req_3', 'req_4', 'req_5', 'req_6', 'req_7'],
  );
});

test('audit tail prints an aligned table with control characters masked', async (t) => {
  const dir = tempDataDir(t);
  await seed(dir, 3);
  const result = await cli(dir, ['--data-dir', dir, 'audit', 'tail']);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.match(
    lines[0]!,
    /^TIME \(UTC\)\s+STATUS\s+ACTION\s+KEY\s+MODEL\s+TOKENS\s+LATENCY\s+ERROR$/,
  );
  const statusColumn = lines[0]!.indexOf('STATUS');
  for (const line of lines.slice(1)) assert.match(line.slice(statusColumn), /^(200|429) /);
  assert.match(lines[3]!, /429\s+chat\.complete\s+ci\s+evil\?\[31mred\s+15\s+43ms\s+rate_limited$/);
  assert.ok(!result.stdout.includes('\u001b'));
});

test('audit tail with a bad -n is a usage error', async (t) => {
  const dir = tempDataDir(t);
  const result = await cli(dir, ['--data-dir', dir, 'audit', 'tail', '-n', '0']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /-n must be an integer/);
});

test('audit tail without an audit store says so, exits 2 and creates nothing', async (t) => {
  const dir = tempDataDir(t);
  const missing = join(dir, 'nowhere');
  const result = await cli(dir, ['--data-dir', missing, 'audit', 'tail']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /no audit trail in the data directory/);
  assert.equal(existsSync(missing), false);
});
