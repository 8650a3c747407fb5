import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { isLoopbackHost } from '../../src/config/schema.js';
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

test('a YAML syntax error names the file, line and column', async () => {
  const cwd = await tempDir({ 'mistral-guard.yaml': 'server:\n  port: 8080\n  host: [a\n' });
  const error = await problemsOf(loadConfig({ cwd, env: {} }));
  const [problem] = error.problems;
  assert.equal(problem?.source, join(cwd, 'mistral-guard.yaml'));
  assert.equal(typeof problem?.line, 'number');
  assert.equal(typeof problem?.column, 'number');
  assert.ok(problem!.line! >= 3, `line ${problem?.line}`);
  const file = join(cwd, 'mistral-guard.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(error.format(), new RegExp(`\\[from ${file}:\\d+:\\d+\\]: invalid YAML`));
});

test('a schema problem in the file names its path and its line:column there', async () => {
  const cwd = await tempDir({
    'mistral-guard.yaml': [
      'server:',
      '  port: 99999',
      'upstream:',
      '  baseUrl: https://api.mistral.ai',
      '  apiKey: nope',
      'profiles:',
      '  production:',
      '    models:',
      '      - ok-model',
      '      - "bad model"',
      '',
    ].join('\n'),
  });
  const error = await problemsOf(loadConfig({ cwd, env: { MISTRAL_GUARD_LOG_LEVEL: 'loud' } }));
  const at = (path: string) => {
    const p = error.problems.find((problem) => problem.path === path);
    assert.ok(p, `no problem at ${path}`);
    return [p.line, p.column];
  };
  assert.deepEqual(at('server.port'), [2, 9]);
  assert.deepEqual(at('upstream'), [5, 3], 'an unknown field points at its key');
  assert.deepEqual(at('profiles.production.models[1]'), [10, 9]);
  assert.deepEqual(at('log.level'), [undefined, undefined], 'a variable has no position');
  const file = join(cwd, 'mistral-guard.yaml');
  assert.ok(error.format().includes(`server.port [from ${file}:2:9]: `), error.format());
});

test('a missing upstream key is listed with the schema problems, never with a value', async () => {
  const other = canaryUpstreamKey();
  const cwd = await tempDir({ 'mistral-guard.yaml': 'server:\n  port: 99999\n' });
  const error = await problemsOf(
    loadConfig({
      cwd,
      env: { MISTRAL_GUARD_ENV: 'staging', MISTRAL_API_KEY_PRODUCTION: other },
      requireUpstreamKey: true,
    }),
  );
  assert.deepEqual(error.problems.map((p) => p.path).sort(), ['server.port', 'upstream key']);
  const text = error.format();
  assert.match(text, /environment "staging" \(set by MISTRAL_GUARD_ENV\)/);
  assert.match(text, /MISTRAL_API_KEY_STAGING, MISTRAL_API_KEY \(environment and .*\.env\)/);
  assert.ok(!text.includes(other.slice(0, 8)), 'no key value or prefix in the report');
});

test('each served environment without a key is reported; a bad name is not echoed', async () => {
  const cwd = await tempDir({
    'mistral-guard.yaml': 'environments: [development, staging]\nlog:\n  level: loud\n',
  });
  const error = await problemsOf(loadConfig({ cwd, env: {}, requireUpstreamKey: true }));
  const keyProblems = error.problems.filter((p) => p.path === 'upstream key');
  assert.equal(keyProblems.length, 2);
  assert.equal(error.problems.length, 3);

  const badName = canaryUpstreamKey();
  const bad = await problemsOf(
    loadConfig({
      cwd: await tempDir(),
      env: {},
      flags: { environment: badName },
      requireUpstreamKey: true,
    }),
  );
  assert.deepEqual(
    bad.problems.map((p) => [p.path, p.source]),
    [['environment', '--env']],
  );
  assert.ok(!bad.format().includes(badName));
});

test('an environment set by --env is blamed on the flag, not on the file or defaults', async () => {
  const cwd = await tempDir({ 'mistral-guard.yaml': 'server:\n  port: 9000\n' });
  const error = await problemsOf(loadConfig({ cwd, env: {}, flags: { environment: 'nowhere' } }));
  assert.deepEqual(
    error.problems.map((p) => [p.path, p.source, p.line]),
    [['environment', '--env', undefined]],
  );
  assert.match(error.format(), /environment \[from --env\]: environment "nowhere" has no profile/);

  const noKey = await problemsOf(
    loadConfig({ cwd, env: {}, flags: { environment: 'staging' }, requireUpstreamKey: true }),
  );
  assert.match(noKey.format(), /environment "staging" \(set by --env\): looked in/);

  const listed = await tempDir({
    'mistral-guard.yaml': 'environments:\n  - development\n  - nowhere\n',
  });
  const fromFile = await problemsOf(loadConfig({ cwd: listed, env: {} }));
  assert.deepEqual(
    fromFile.problems.map((p) => [p.path, p.source, p.line, p.column]),
    [['environments[1]', join(listed, 'mistral-guard.yaml'), 3, 5]],
  );
});

test('only localhost, 127.0.0.0/8 and ::1 count as loopback', async () => {
  for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.8.9.10', '::1', '[::1]']) {
    assert.equal(isLoopbackHost(host), true, host);
  }
  for (const host of ['api.localhost', 'localhost.', 'localhost.example.com', '10.0.0.1', '::2']) {
    assert.equal(isLoopbackHost(host), false, host);
  }
  const cwd = await tempDir();
  const error = await problemsOf(
    loadConfig({ cwd, env: { MISTRAL_BASE_URL: 'http://evil.localhost:8080' } }),
  );
  assert.match(
    error.format(),
    /upstream\.baseUrl \[from MISTRAL_BASE_URL\]: plain http:\/\/ is refused/,
  );
});
