import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { createKeySource } from '../../src/secrets/sources.js';
import { envOf, newKey } from './helpers.js';

async function configIn(yaml: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-sources-'));
  await writeFile(join(dir, 'mistral-guard.yaml'), yaml);
  return dir;
}

async function problemsOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.format();
  }
  assert.fail('expected a ConfigError');
}

const SOURCES = [
  'environment: production',
  'environments: [production, staging, development]',
  'upstreamKey:',
  '  sources:',
  '    production: { source: aws, secretId: prod/mistral, field: api_key, region: eu-west-3 }',
  '    staging: { source: env, variable: STAGING_MISTRAL }',
  '',
].join('\n');

test('an environment with a configured source is not looked up in the environment', async () => {
  const staging = newKey();
  const cwd = await configIn(SOURCES);
  const env = { STAGING_MISTRAL: staging, MISTRAL_API_KEY_DEVELOPMENT: newKey() };
  const config = await loadConfig({ cwd, env, requireUpstreamKey: true });
  assert.deepEqual(Object.keys(config.upstreamKeys).sort(), ['development', 'staging']);
  assert.equal(config.upstreamKeys.staging?.reveal(), staging);
  assert.equal(config.upstreamKey.sources.production?.source, 'aws');
  assert.equal(config.upstreamKey.refreshSeconds, 300);
  assert.deepEqual(config.upstreamKey.requireSeparateKeys, ['production']);

  const text = await problemsOf(loadConfig({ cwd, env: {}, requireUpstreamKey: true }));
  assert.match(
    text,
    /no upstream Mistral key for environment "staging".*looked in STAGING_MISTRAL/,
  );
  assert.doesNotMatch(text, /"production"/);
});

test('each source is built from its configuration', async () => {
  const config = await loadConfig({ cwd: await configIn(SOURCES), env: {} });
  const deps = { readEnv: envOf({}), timeoutMs: 1000 };
  const of = (env: string) => createKeySource(env, config.upstreamKey.sources[env], deps);
  assert.equal(of('production').location, 'aws secret prod/mistral field api_key');
  assert.equal(of('staging').location, 'STAGING_MISTRAL');
  assert.equal(of('development').location, 'MISTRAL_API_KEY_DEVELOPMENT or MISTRAL_API_KEY');
});

test('a secret manager over plain HTTP to another host is refused', async () => {
  const yaml = [
    'upstreamKey:',
    '  sources:',
    '    development: { source: vault, address: "http://vault.internal:8200", path: mistral/dev }',
    '',
  ].join('\n');
  const text = await problemsOf(loadConfig({ cwd: await configIn(yaml), env: {} }));
  assert.match(
    text,
    /upstreamKey\.sources\.development\.address.*plain http:\/\/ only to a loopback host/,
  );
});

test('an unknown source kind or a stray field is refused with its path', async () => {
  const yaml = [
    'upstreamKey:',
    '  sources:',
    '    development: { source: keychain }',
    '    production: { source: file, path: /run/key, field: x }',
    '',
  ].join('\n');
  const text = await problemsOf(loadConfig({ cwd: await configIn(yaml), env: {} }));
  assert.match(text, /upstreamKey\.sources\.development\.source/);
  assert.match(text, /upstreamKey\.sources\.production.*unknown field "field"/);
});
