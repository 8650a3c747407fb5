import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type FakeAws, startFakeAws } from '../secrets/fake-aws.js';
import { canaryUpstreamKey, findLeaks } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type CliResult, runCli } from '../support/processes.js';

const valid = canaryUpstreamKey();
const replacement = canaryUpstreamKey();
const refused = canaryUpstreamKey();
const awsCredentials = {
  accessKeyId: 'AKIAFAKEFAKEFAKE0002',
  secretAccessKey: canaryUpstreamKey(),
};
/** Every run's output, for the canary check at the end. */
const outputs: Record<string, string> = {};
let mock: MockMistral;
let aws: FakeAws;

before(async () => {
  mock = await startMockMistral({ validKeys: [valid, replacement] });
  aws = await startFakeAws(awsCredentials);
});
after(async () => {
  await mock.close();
  await aws.close();
});

/** A working directory with a configuration file. */
async function workdir(yaml = ''): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-upstream-'));
  await writeFile(join(dir, 'mistral-guard.yaml'), yaml);
  return dir;
}

async function run(
  name: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; input?: string },
): Promise<CliResult> {
  const result = await runCli(['--data-dir', join(options.cwd, 'data'), 'upstream', ...args], {
    cwd: options.cwd,
    input: options.input,
    env: { MISTRAL_BASE_URL: mock.url, ...options.env },
  });
  outputs[`${name} stdout`] = result.stdout;
  outputs[`${name} stderr`] = result.stderr;
  return result;
}

test('verify reports valid for MISTRAL_API_KEY_NEW and exits 0', async () => {
  const cwd = await workdir();
  const result = await run('verify valid', ['verify'], {
    cwd,
    env: { MISTRAL_API_KEY_NEW: valid },
  });
  assert.equal(result.stdout, 'valid\n');
  assert.match(
    result.stderr,
    /^checking the key from MISTRAL_API_KEY_NEW \(fingerprint [0-9a-f]{12}\)\n$/,
  );
  assert.equal(result.code, 0);
});

test('verify reports invalid with the status for a refused key from stdin, exit 1', async () => {
  const result = await run('verify invalid', ['verify', '--stdin'], {
    cwd: await workdir(),
    input: `${refused}\n`,
  });
  assert.equal(result.stdout, 'invalid (401)\n');
  assert.equal(result.code, 1);
});

test('verify reports unreachable when Mistral does not answer, exit 1', async () => {
  const result = await run('verify unreachable', ['verify', '--json'], {
    cwd: await workdir(),
    env: { MISTRAL_API_KEY_NEW: valid, MISTRAL_BASE_URL: 'http://127.0.0.1:1' },
  });
  assert.deepEqual(JSON.parse(result.stdout), {
    result: 'unreachable',
    candidate: 'MISTRAL_API_KEY_NEW',
    fingerprint: JSON.parse(result.stdout).fingerprint,
  });
  assert.equal(result.code, 1);
});

test('verify refuses a malformed key without sending it anywhere', async () => {
  const before = mock.requests.length;
  const result = await run('verify malformed', ['verify', '--stdin'], {
    cwd: await workdir(),
    input: `Bearer ${valid}`,
  });
  assert.equal(result.stdout, 'invalid (not 32 letters and digits)\n');
  assert.equal(result.code, 1);
  assert.equal(mock.requests.length, before);
});

test("verify checks an environment's configured source", async () => {
  aws.setSecret('prod/mistral', JSON.stringify({ api_key: valid }));
  const cwd = await workdir(
    [
      'upstreamKey:',
      '  sources:',
      '    production:',
      '      source: aws',
      '      secretId: prod/mistral',
      '      field: api_key',
      '      region: eu-west-3',
      `      endpoint: ${aws.url}`,
      '',
    ].join('\n'),
  );
  const env = {
    AWS_ACCESS_KEY_ID: awsCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: awsCredentials.secretAccessKey,
  };
  const result = await run('verify source', ['verify', '--env', 'production'], { cwd, env });
  assert.equal(result.stdout, 'valid\n');
  const forced = await run('verify --source', ['verify', '--source'], {
    cwd,
    env: { ...env, MISTRAL_API_KEY_NEW: refused, MISTRAL_GUARD_ENV: 'production' },
  });
  assert.equal(forced.stdout, 'valid\n');
  assert.match(result.stderr, /the key from aws secret prod\/mistral field api_key/);
  assert.equal(result.code, 0);

  const missing = await run('verify missing source', ['verify', '--env', 'production'], {
    cwd,
    env: { ...env, AWS_SECRET_ACCESS_KEY: 'wrong' },
  });
  assert.match(
    missing.stderr,
    /error: AWS Secrets Manager refused our credentials .*\(source_auth_failed\)/,
  );
  assert.equal(missing.code, 1);
});

test('rotate writes a file source and prints an audit record without the key', async () => {
  const cwd = await workdir();
  const path = join(cwd, 'mistral-key');
  await writeFile(path, valid);
  await chmod(path, 0o600);
  await writeFile(
    join(cwd, 'mistral-guard.yaml'),
    `environment: production\nupstreamKey:\n  sources:\n    production: { source: file, path: ${path} }\n`,
  );
  const result = await run('rotate file', ['rotate', '--json'], {
    cwd,
    env: { MISTRAL_API_KEY_NEW: replacement },
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await readFile(path, 'utf8'), `${replacement}\n`);
  const record = JSON.parse(result.stdout);
  assert.equal(record.event, 'upstream_key.rotated');
  assert.equal(record.environment, 'production');
  assert.equal(record.written, true);
  assert.match(record.actor, /^cli:.+@.+/);
  assert.deepEqual(record.verified, { result: 'valid', status: 200 });
  assert.match(result.stderr, /Running gateways switch at their next refresh/);

  const again = await run('rotate refused', ['rotate', '--stdin'], { cwd, input: refused });
  assert.equal(again.stdout, '');
  assert.match(again.stderr, /^error: Mistral refused the key \(401\) \(key_invalid\)\n$/);
  assert.equal(again.code, 1);
  assert.equal(await readFile(path, 'utf8'), `${replacement}\n`);
});

test('rotate refuses an environment whose key lives in the process environment', async () => {
  const result = await run('rotate env', ['rotate', '--env', 'staging'], {
    cwd: await workdir(),
    env: { MISTRAL_API_KEY_NEW: replacement, MISTRAL_API_KEY_STAGING: valid },
  });
  assert.match(result.stderr, /cannot be written by mistral-guard \(source_read_only\)/);
  assert.match(result.stderr, /restart each replica/);
  assert.equal(result.code, 1);
});

test('rotate without a new key is a usage error', async () => {
  const result = await run('rotate no key', ['rotate'], { cwd: await workdir() });
  assert.match(result.stderr, /give the new key in MISTRAL_API_KEY_NEW or on stdin/);
  assert.equal(result.code, 2);
});

test('status names each source and fingerprint; a shared production key stops it', async () => {
  const cwd = await workdir('environments: [development, staging]\n');
  const result = await run('status', ['status', '--verify'], {
    cwd,
    env: { MISTRAL_API_KEY: valid, MISTRAL_API_KEY_STAGING: refused },
  });
  const lines = result.stdout.trim().split('\n');
  assert.match(
    lines[0]!,
    /^development {2}env {2}[0-9a-f]{12} {2}valid \(200\) {2}MISTRAL_API_KEY$/,
  );
  assert.match(
    lines[1]!,
    /^staging {2}env {2}[0-9a-f]{12} {2}invalid \(401\) {2}MISTRAL_API_KEY_STAGING$/,
  );
  assert.equal(result.code, 1);

  const shared = await run('status shared', ['--env', 'production', 'status'], {
    cwd: await workdir(),
    env: { MISTRAL_API_KEY: valid },
  });
  assert.match(shared.stderr, /"production" must have an upstream key of its own/);
  assert.equal(shared.code, 2);
});

test('no command prints, logs or reports a key', () => {
  const secrets = { valid, replacement, refused, aws: awsCredentials.secretAccessKey };
  for (const [name, secret] of Object.entries(secrets)) {
    assert.deepEqual(findLeaks(secret, outputs), [], name);
  }
});
