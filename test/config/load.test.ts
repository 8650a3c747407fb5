import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { canaryUpstreamKey } from '../support/canary.js';

async function tempDir(files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-config-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

async function problemsOf(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  assert.fail('expected a ConfigError');
}

test('an empty configuration gives the documented defaults', async () => {
  const config = await loadConfig({ cwd: await tempDir(), env: {} });
  assert.equal(config.environment, 'development');
  assert.deepEqual(config.environments, ['development']);
  assert.equal(config.server.host, '127.0.0.1');
  assert.equal(config.server.port, 8741);
  assert.equal(config.upstream.baseUrl, 'https://api.mistral.ai');
  assert.deepEqual(Object.keys(config.profiles).sort(), ['development', 'production', 'staging']);
  assert.equal(config.profiles.production?.maxTokens, 4096);
  assert.equal(config.configFile, null);
});

test('flags win over the environment, which wins over the file', async () => {
  const cwd = await tempDir({ 'mistral-guard.yaml': 'server:\n  port: 9000\n  host: 0.0.0.0\n' });
  const fromFile = await loadConfig({ cwd, env: {} });
  assert.equal(fromFile.server.port, 9000);
  const fromEnv = await loadConfig({ cwd, env: { MISTRAL_GUARD_PORT: '9100' } });
  assert.equal(fromEnv.server.port, 9100);
  assert.equal(fromEnv.server.host, '0.0.0.0');
  const fromFlag = await loadConfig({
    cwd,
    env: { MISTRAL_GUARD_PORT: '9100' },
    flags: { port: '9200' },
  });
  assert.equal(fromFlag.server.port, 9200);
});

test('the environment comes from MISTRAL_GUARD_ENV, then NODE_ENV', async () => {
  const cwd = await tempDir();
  assert.equal((await loadConfig({ cwd, env: { NODE_ENV: 'staging' } })).environment, 'staging');
  const both = await loadConfig({
    cwd,
    env: { NODE_ENV: 'staging', MISTRAL_GUARD_ENV: 'production' },
  });
  assert.equal(both.environment, 'production');
});

test('the per-environment upstream key wins over MISTRAL_API_KEY and is never printed', async () => {
  const general = canaryUpstreamKey();
  const production = canaryUpstreamKey();
  const config = await loadConfig({
    cwd: await tempDir(),
    env: {
      MISTRAL_GUARD_ENV: 'production',
      MISTRAL_API_KEY: general,
      MISTRAL_API_KEY_PRODUCTION: production,
    },
    requireUpstreamKey: true,
  });
  const key = config.upstreamKeys.production!;
  assert.equal(key.reveal(), production);
  assert.equal(key.source, 'MISTRAL_API_KEY_PRODUCTION');
  const shown = `${JSON.stringify(config)} ${inspect(config, { depth: 10 })} ${String(key)}`;
  assert.ok(!shown.includes(production) && !shown.includes(general));
});

test('a .env file is read when present and real variables win over it', async () => {
  const fromDotenv = canaryUpstreamKey();
  const cwd = await tempDir({ '.env': `MISTRAL_API_KEY=${fromDotenv}\nMISTRAL_GUARD_PORT=9300\n` });
  const saved = process.env.MISTRAL_GUARD_PORT;
  process.env.MISTRAL_GUARD_PORT = '9400';
  try {
    const config = await loadConfig({ cwd, requireUpstreamKey: true });
    assert.equal(config.upstreamKeys.development?.reveal(), fromDotenv);
    assert.equal(config.server.port, 9400);
  } finally {
    if (saved === undefined) delete process.env.MISTRAL_GUARD_PORT;
    else process.env.MISTRAL_GUARD_PORT = saved;
  }
});

test('a missing upstream key says where it was looked for', async () => {
  const error = await problemsOf(
    loadConfig({
      cwd: await tempDir(),
      env: { MISTRAL_GUARD_ENV: 'staging' },
      requireUpstreamKey: true,
    }),
  );
  assert.match(error.format(), /MISTRAL_API_KEY_STAGING, MISTRAL_API_KEY/);
});

test('every problem is listed with its path and source, and no value is printed', async () => {
  const secretish = canaryUpstreamKey();
  const cwd = await tempDir({
    'mistral-guard.yaml': [
      'server:',
      '  port: 99999',
      'upstream:',
      `  baseUrl: http://api.example.com/${secretish}`,
      `  apiKey: ${secretish}`,
      'profiles:',
      '  production:',
      '    maxTokens: -1',
      "    maxTokensAction: 'explode'",
      '',
    ].join('\n'),
  });
  const error = await problemsOf(loadConfig({ cwd, env: { MISTRAL_GUARD_LOG_LEVEL: 'loud' } }));
  const paths = error.problems.map((p) => p.path).sort();
  assert.deepEqual(paths, [
    'log.level',
    'profiles.production.maxTokens',
    'profiles.production.maxTokensAction',
    'server.port',
    'upstream',
    'upstream.baseUrl',
  ]);
  const text = error.format();
  assert.match(text, /plain http:\/\/ is refused/);
  assert.match(text, /unknown field "apiKey"/);
  assert.match(text, /\[from MISTRAL_GUARD_LOG_LEVEL\]/);
  assert.ok(!text.includes(secretish), 'no value in the report');
});

test('plain http is accepted for a loopback upstream only', async () => {
  const cwd = await tempDir();
  for (const url of ['http://127.0.0.1:9999', 'http://localhost:1234', 'http://[::1]:80']) {
    const config = await loadConfig({ cwd, env: { MISTRAL_BASE_URL: url } });
    assert.equal(config.upstream.baseUrl, url.replace(/\/$/, ''));
  }
  await problemsOf(loadConfig({ cwd, env: { MISTRAL_BASE_URL: 'http://10.0.0.1' } }));
  await problemsOf(loadConfig({ cwd, env: { MISTRAL_BASE_URL: 'ftp://127.0.0.1' } }));
});

test('invalid YAML is reported by position, without quoting the line', async () => {
  const secretish = canaryUpstreamKey();
  const cwd = await tempDir({ 'mistral-guard.yaml': `server:\n  port: [${secretish}\n` });
  const error = await problemsOf(loadConfig({ cwd, env: {} }));
  assert.match(error.format(), /invalid YAML/);
  assert.ok(!error.format().includes(secretish));
});

test('an explicit config path that does not exist is an error, an absent default file is not', async () => {
  const cwd = await tempDir();
  const error = await problemsOf(loadConfig({ cwd, env: {}, configPath: 'nope.yaml' }));
  assert.match(error.format(), /file not found/);
  const viaEnv = await problemsOf(
    loadConfig({ cwd, env: { MISTRAL_GUARD_CONFIG: 'missing.yaml' } }),
  );
  assert.match(viaEnv.format(), /file not found/);
});

test('a file may add an environment profile, and a served environment needs a profile', async () => {
  const cwd = await tempDir({
    'mistral-guard.yaml':
      "environments: [development, qa]\nprofiles:\n  qa:\n    models: ['mistral-small-*']\n",
  });
  const config = await loadConfig({ cwd, env: {} });
  assert.deepEqual(config.profiles.qa?.models, ['mistral-small-*']);
  assert.equal(config.profiles.qa?.maxTokens, 8192);
  const bad = await tempDir({ 'mistral-guard.yaml': 'environments: [nowhere]\n' });
  const error = await problemsOf(loadConfig({ cwd: bad, env: {} }));
  assert.match(error.format(), /environment "nowhere" has no profile/);
});
