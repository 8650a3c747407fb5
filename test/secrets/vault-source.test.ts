import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { isUpstreamKeyError } from '../../src/secrets/errors.js';
import { createUpstreamKeyProvider } from '../../src/secrets/provider.js';
import { type VaultKeySourceOptions, vaultKeySource } from '../../src/secrets/vault-source.js';
import { type FakeVault, startFakeVault } from './fake-vault.js';
import { configWith, envOf, FAST_RETRY, memoryLogger, newKey } from './helpers.js';

let vault: FakeVault;

before(async () => {
  vault = await startFakeVault();
});
after(() => vault.close());

function source(options: Partial<VaultKeySourceOptions> = {}, vars?: Record<string, string>) {
  return vaultKeySource({
    address: vault.url,
    path: 'mistral/production',
    field: 'api_key',
    auth: { method: 'token', tokenEnv: 'VAULT_TOKEN' },
    readEnv: envOf(vars ?? { VAULT_TOKEN: vault.rootToken }),
    timeoutMs: 2000,
    retry: FAST_RETRY,
    ...options,
  });
}

const approle = {
  auth: {
    method: 'approle',
    mount: 'approle',
    roleIdEnv: 'VAULT_ROLE_ID',
    secretIdEnv: 'VAULT_SECRET_ID',
  },
} as const;

test('a field of a KV v2 secret is read with a token', async () => {
  const key = newKey();
  vault.setSecret('mistral/production', { api_key: key, owner: 'platform' });
  const loaded = await source().load();
  assert.equal(loaded.key.reveal(), key);
  assert.equal(loaded.version, '1');
  const request = vault.requests.at(-1)!;
  assert.equal(request.path, '/v1/secret/data/mistral/production');
  assert.equal(request.headers['x-vault-token'], vault.rootToken);
});

test('an AppRole logs in once and reuses its token', async () => {
  vault.setSecret('mistral/production', { api_key: newKey() });
  const vars = { VAULT_ROLE_ID: vault.approle.roleId, VAULT_SECRET_ID: vault.approle.secretId };
  const s = source(approle, vars);
  const logins = vault.logins;
  await s.load();
  await s.load();
  assert.equal(vault.logins, logins + 1);
  vault.revokeLoginTokens();
  assert.equal((await s.load()).key.reveal(), vault.secret('mistral/production')!.api_key);
  assert.equal(vault.logins, logins + 2);
});

test('bad credentials are refused as source_auth_failed', async () => {
  await assert.rejects(source({}, { VAULT_TOKEN: 'hvs.wrong' }).load(), (e) =>
    isUpstreamKeyError(e, 'source_auth_failed'),
  );
  const wrongSecretId = { VAULT_ROLE_ID: vault.approle.roleId, VAULT_SECRET_ID: 'wrong' };
  await assert.rejects(source(approle, wrongSecretId).load(), (e) =>
    isUpstreamKeyError(e, 'source_auth_failed'),
  );
  await assert.rejects(source({}, {}).load(), (e) => {
    assert.ok(isUpstreamKeyError(e, 'source_auth_failed'));
    assert.match(e.message, /VAULT_TOKEN is not set/);
    return true;
  });
});

test('a missing secret or field is source_not_found', async () => {
  await assert.rejects(source({ path: 'mistral/absent' }).load(), (e) =>
    isUpstreamKeyError(e, 'source_not_found'),
  );
  vault.setSecret('mistral/production', { other: 'x' });
  await assert.rejects(source().load(), (e) => isUpstreamKeyError(e, 'source_not_found'));
});

test('throttling is retried, and reported when it lasts', async () => {
  vault.setSecret('mistral/production', { api_key: newKey() });
  vault.throttle(1);
  assert.equal((await source().load()).key.reveal(), vault.secret('mistral/production')!.api_key);
  vault.throttle(5);
  await assert.rejects(source().load(), (e) => isUpstreamKeyError(e, 'source_throttled'));
  vault.throttle(0);
});

test('a write adds a version with check-and-set and keeps the other fields', async () => {
  vault.setSecret('mistral/production', { api_key: newKey(), owner: 'platform' });
  const key = newKey();
  const { version } = await source().write!(new Secret(key, 'test'));
  assert.deepEqual(vault.secret('mistral/production'), { api_key: key, owner: 'platform' });
  const write = vault.requests.findLast((r) => r.method === 'POST')!;
  assert.equal(JSON.parse(write.body).options.cas, Number(version) - 1);
  await assert.rejects(source({ version: 1 }).write!(new Secret(key, 'test')), (e) =>
    isUpstreamKeyError(e, 'source_read_only'),
  );
});

test('a changed value is picked up by a refresh', async () => {
  vault.setSecret('mistral/production', { api_key: newKey() });
  const { logger } = memoryLogger();
  const provider = await createUpstreamKeyProvider({
    config: configWith(),
    logger,
    sources: { production: source() },
    timer: false,
  });
  const before = Number(provider.status().production?.version);
  const key = newKey();
  vault.setSecret('mistral/production', { api_key: key });
  assert.deepEqual(await provider.refresh(), [{ environment: 'production', outcome: 'changed' }]);
  assert.equal(provider.current('production').reveal(), key);
  assert.equal(provider.status().production?.version, String(before + 1));
});
