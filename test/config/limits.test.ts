import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';

async function fromYaml(yaml: string, env: Record<string, string> = {}) {
  const cwd = await mkdtemp(join(tmpdir(), 'mg-config-limits-'));
  await writeFile(join(cwd, 'mistral-guard.yaml'), yaml);
  return loadConfig({ cwd, env });
}

async function problems(yaml: string, env: Record<string, string> = {}): Promise<ConfigError> {
  try {
    await fromYaml(yaml, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  assert.fail('expected a ConfigError');
}

test('every built-in profile has limits, and production refuses during an outage', async () => {
  const { profiles, limits } = await fromYaml('');
  assert.deepEqual(profiles.development?.limits, {
    rpm: 120,
    tpm: 500_000,
    concurrency: 8,
    dailyTokens: 1_000_000,
    monthlyTokens: null,
    onOutage: 'allow',
  });
  assert.deepEqual(profiles.staging?.limits, {
    rpm: 300,
    tpm: 1_000_000,
    concurrency: 16,
    dailyTokens: 5_000_000,
    monthlyTokens: null,
    onOutage: 'allow',
  });
  assert.deepEqual(profiles.production?.limits, {
    rpm: 600,
    tpm: 2_000_000,
    concurrency: 32,
    dailyTokens: null,
    monthlyTokens: null,
    onOutage: 'refuse',
  });
  assert.deepEqual(limits, { prefix: 'mistral-guard:', authFailuresPerMinute: 20 });
});

test('a profile added by the file gets the default limits and refuses during an outage', async () => {
  const config = await fromYaml('profiles:\n  qa: {}\n');
  assert.deepEqual(config.profiles.qa?.limits, config.profiles.production?.limits);
});

test('a file setting some limits keeps the built-in profile for the others', async () => {
  const config = await fromYaml(
    [
      'profiles:',
      '  development:',
      '    limits:',
      '      rpm: 30',
      '      dailyTokens: null',
      '  production:',
      '    limits:',
      '      monthlyTokens: 50000000',
      '      onOutage: allow',
    ].join('\n'),
  );
  assert.deepEqual(config.profiles.development?.limits, {
    rpm: 30,
    tpm: 500_000,
    concurrency: 8,
    dailyTokens: null,
    monthlyTokens: null,
    onOutage: 'allow',
  });
  assert.equal(config.profiles.production?.limits.monthlyTokens, 50_000_000);
  assert.equal(config.profiles.production?.limits.onOutage, 'allow');
  assert.equal(config.profiles.production?.limits.rpm, 600);
});

test('the top-level limits section sets the Redis backend, prefix and failed-auth limit', async () => {
  const config = await fromYaml(
    'limits:\n  redisUrl: redis://127.0.0.1:6379/2\n  prefix: "mg:prod:"\n  authFailuresPerMinute: 0\n',
  );
  assert.equal(config.limits.redisUrl?.reveal(), 'redis://127.0.0.1:6379/2');
  assert.equal(config.limits.prefix, 'mg:prod:');
  assert.equal(config.limits.authFailuresPerMinute, 0);
});

test('MISTRAL_GUARD_REDIS_URL sets the Redis URL and wins over the file', async () => {
  const config = await fromYaml('limits:\n  redisUrl: redis://127.0.0.1:1\n', {
    MISTRAL_GUARD_REDIS_URL: 'rediss://cache.internal:6380',
  });
  assert.equal(config.limits.redisUrl?.reveal(), 'rediss://cache.internal:6380');
});

test('a Redis URL is never printed, since it may carry a password', async () => {
  const url = 'redis://default:pw-4f1c9a77e2@127.0.0.1:6379';
  const config = await fromYaml('', { MISTRAL_GUARD_REDIS_URL: url });
  const shown = `${JSON.stringify(config)} ${inspect(config, { depth: 10 })}`;
  assert.ok(!shown.includes('pw-4f1c9a77e2'));
  assert.equal(config.limits.redisUrl?.reveal(), url);
});

test('bad limit values are reported with their path, and no value is printed', async () => {
  const error = await problems(
    [
      'profiles:',
      '  production:',
      '    limits:',
      '      rpm: 0',
      '      tpm: -5',
      '      concurrency: 1.5',
      '      dailyTokens: "lots"',
      '      onOutage: sometimes',
      '      burst: 3',
      'limits:',
      '  prefix: "has space"',
      '  authFailuresPerMinute: -1',
    ].join('\n'),
  );
  assert.deepEqual(error.problems.map((p) => p.path).sort(), [
    'limits.authFailuresPerMinute',
    'limits.prefix',
    'profiles.production.limits',
    'profiles.production.limits.concurrency',
    'profiles.production.limits.dailyTokens',
    'profiles.production.limits.onOutage',
    'profiles.production.limits.rpm',
    'profiles.production.limits.tpm',
  ]);
  const text = error.format();
  assert.match(text, /unknown field "burst"/);
  assert.ok(!text.includes('sometimes') && !text.includes('lots') && !text.includes('has space'));
});

test('a Redis URL that is not redis:// or rediss:// is refused without echoing it', async () => {
  for (const url of ['http://127.0.0.1:6379', 'not a url pw-77', 'redis://']) {
    const error = await problems('', { MISTRAL_GUARD_REDIS_URL: url });
    assert.deepEqual(
      error.problems.map((p) => [p.path, p.source]),
      [['limits.redisUrl', 'MISTRAL_GUARD_REDIS_URL']],
    );
    assert.match(error.format(), /must be a URL such as redis:\/\//);
    assert.ok(!error.format().includes('pw-77'));
  }
});
