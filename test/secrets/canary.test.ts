import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { inspect } from 'node:util';
import { Secret } from '../../src/config/secret.js';
import { createUpstreamKeyProvider } from '../../src/secrets/provider.js';
import { findLeaks } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { type FakeAws, startFakeAws } from './fake-aws.js';
import { type FakeVault, startFakeVault } from './fake-vault.js';
import { configWith, envOf, memoryLogger, newKey } from './helpers.js';

const planted = newKey();
const next = newKey();
const awsSecret = newKey();
/** Every text a test can reach: log lines, errors, statuses, records. */
const seen: Record<string, string> = {};
let mock: MockMistral;
let aws: FakeAws;
let vault: FakeVault;

before(async () => {
  mock = await startMockMistral({ validKeys: [planted, next] });
  aws = await startFakeAws({ accessKeyId: 'AKIAFAKEFAKEFAKE0003', secretAccessKey: awsSecret });
  vault = await startFakeVault();
});
after(async () => {
  await Promise.all([mock.close(), aws.close(), vault.close()]);
});

function record(name: string, value: unknown): void {
  seen[name] =
    value instanceof Error
      ? `${value.message}\n${inspect(value, { depth: 5 })}\n${(value as { format?: () => string }).format?.() ?? ''}`
      : typeof value === 'string'
        ? value
        : `${JSON.stringify(value)}\n${inspect(value, { depth: 5 })}`;
}

async function attempt(name: string, work: () => Promise<unknown>): Promise<void> {
  try {
    record(name, await work());
  } catch (error) {
    record(name, error);
  }
}

test('a planted key never appears in a log line, an error, a status or a record', async () => {
  const log = memoryLogger();
  const dir = await mkdtemp(join(tmpdir(), 'mg-canary-'));
  const env = {
    AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKE0003',
    AWS_SECRET_ACCESS_KEY: awsSecret,
    VAULT_TOKEN: vault.rootToken,
  };
  const start = (vars: Record<string, string>, upstreamKey: Record<string, unknown> = {}) =>
    createUpstreamKeyProvider({
      config: configWith({ verify: true, ...upstreamKey }, ['production'], mock.url),
      logger: log.logger,
      readEnv: envOf({ ...env, ...vars }),
      timer: false,
    });
  const awsSource = (secretId: string, field?: string) => ({
    sources: {
      production: { source: 'aws', secretId, field, region: 'eu-west-3', endpoint: aws.url },
    },
  });

  // Values that are not a usable key, each around the planted key.
  aws.setSecret('json', JSON.stringify({ api_key: planted }));
  aws.setSecret('plain', `${planted} trailing`);
  await attempt('wrong field', () => start({}, awsSource('json', 'other')));
  await attempt('not JSON', () => start({}, awsSource('plain', 'api_key')));
  await attempt('malformed', () => start({}, awsSource('plain')));
  await attempt('shared', () => start({ MISTRAL_API_KEY: planted }));
  await attempt('bad credentials', () =>
    start({ AWS_SECRET_ACCESS_KEY: planted }, awsSource('json', 'api_key')),
  );
  vault.setSecret('mistral/production', { api_key: `'${planted}'` });
  const vaultSource = {
    sources: { production: { source: 'vault', address: vault.url, path: 'mistral/production' } },
  };
  await attempt('vault malformed', () => start({}, vaultSource));

  // A working provider taken through refresh failures, rotations and refusals.
  const path = join(dir, 'key');
  await writeFile(path, planted, { mode: 0o644 });
  const provider = await start({}, { sources: { production: { source: 'file', path } } });
  await writeFile(path, `${next}\n${planted}`);
  await attempt('refresh malformed', () => provider.refresh());
  await attempt('rotate refused', () =>
    provider.rotate('production', new Secret(newKey(), 'x'), { actor: 't' }),
  );
  await attempt('rotate', () =>
    provider.rotate('production', new Secret(next, 'x'), { actor: 't' }),
  );
  provider.onUnauthorized('production', new Secret(planted, 'in flight'));
  provider.onUnauthorized('production', provider.current('production'));
  record('status', provider.status());
  record('provider', inspect(provider, { depth: 5 }));
  record('logs', log.lines.join('\n'));

  assert.ok(log.lines.length > 5);
  for (const [name, secret] of Object.entries({ planted, next, awsSecret })) {
    assert.deepEqual(findLeaks(secret, seen), [], name);
  }
  assert.deepEqual(findLeaks(vault.rootToken, seen), []);
});
