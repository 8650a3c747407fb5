import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { isUpstreamKeyError } from '../../src/secrets/errors.js';
import { crc32c, type GcpKeySourceOptions, gcpKeySource } from '../../src/secrets/gcp-source.js';
import { createUpstreamKeyProvider } from '../../src/secrets/provider.js';
import { type FakeGcp, startFakeGcp } from './fake-gcp.js';
import { configWith, envOf, FAST_RETRY, memoryLogger, newKey } from './helpers.js';

let gcp: FakeGcp;
let keyFile: string;

before(async () => {
  gcp = await startFakeGcp('acme-prod');
  keyFile = join(await mkdtemp(join(tmpdir(), 'mg-gcp-')), 'sa.json');
  await writeFile(keyFile, JSON.stringify(gcp.serviceAccount), { mode: 0o600 });
});
after(() => gcp.close());

function source(options: Partial<GcpKeySourceOptions> = {}) {
  return gcpKeySource({
    project: 'acme-prod',
    secret: 'mistral-key',
    credentials: { file: keyFile },
    endpoint: gcp.url,
    readEnv: envOf({}),
    timeoutMs: 2000,
    retry: FAST_RETRY,
    ...options,
  });
}

test('CRC-32C matches the standard check value', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
});

test('the latest version is read with a token from the service-account file', async () => {
  const key = newKey();
  gcp.setSecret('mistral-key', key);
  const loaded = await source().load();
  assert.equal(loaded.key.reveal(), key);
  assert.equal(loaded.version, String(1));
  const access = gcp.requests.at(-1)!;
  assert.equal(access.path, '/v1/projects/acme-prod/secrets/mistral-key/versions/latest:access');
  assert.match(String(access.headers.authorization), /^Bearer ya29\./);
});

test('a fixed version, a JSON field and the metadata server work too', async () => {
  const first = newKey();
  gcp.setSecret('pinned', first);
  gcp.setSecret('pinned', JSON.stringify({ api_key: newKey() }));
  assert.equal((await source({ secret: 'pinned', version: '1' }).load()).key.reveal(), first);
  const fromMetadata = source({
    secret: 'pinned',
    field: 'api_key',
    credentials: 'metadata',
    readEnv: envOf({ GCE_METADATA_HOST: new URL(gcp.url).host }),
  });
  assert.equal((await fromMetadata.load()).key.reveal(), JSON.parse(gcp.latest('pinned')!).api_key);
});

test('bad credentials are refused as source_auth_failed', async () => {
  const otherFile = `${keyFile}.other`;
  await writeFile(otherFile, JSON.stringify({ ...gcp.serviceAccount, client_email: 'x@y.z' }));
  await assert.rejects(source({ credentials: { file: otherFile } }).load(), (e) =>
    isUpstreamKeyError(e, 'source_auth_failed'),
  );
  await assert.rejects(source({ credentials: { file: `${keyFile}.missing` } }).load(), (e) =>
    isUpstreamKeyError(e, 'source_auth_failed'),
  );
});

test('a revoked token is replaced once, transparently', async () => {
  gcp.setSecret('mistral-key', newKey());
  const s = source();
  await s.load();
  const issued = gcp.tokensIssued;
  gcp.revokeTokens();
  assert.equal((await s.load()).key.reveal(), gcp.latest('mistral-key'));
  assert.equal(gcp.tokensIssued, issued + 1);
});

test('a missing secret is source_not_found', async () => {
  await assert.rejects(source({ secret: 'absent' }).load(), (e) => {
    assert.ok(isUpstreamKeyError(e, 'source_not_found'));
    assert.match(e.message, /NOT_FOUND/);
    return true;
  });
});

test('throttling is retried, and reported when it lasts', async () => {
  gcp.setSecret('mistral-key', newKey());
  gcp.throttle(1);
  assert.equal((await source().load()).key.reveal(), gcp.latest('mistral-key'));
  gcp.throttle(5);
  await assert.rejects(source().load(), (e) => isUpstreamKeyError(e, 'source_throttled'));
  gcp.throttle(0);
});

test('a payload whose checksum does not match is refused', async () => {
  gcp.corruptNext();
  await assert.rejects(source().load(), (e) => isUpstreamKeyError(e, 'source_bad_value'));
});

test('a write adds a version that latest then reads; a pinned version cannot be written', async () => {
  const key = newKey();
  const { version } = await source().write!(new Secret(key, 'test'));
  assert.equal(gcp.latest('mistral-key'), key);
  assert.equal((await source().load()).version, version);
  await assert.rejects(source({ version: '1' }).write!(new Secret(key, 'test')), (e) =>
    isUpstreamKeyError(e, 'source_read_only'),
  );
});

test('a changed value is picked up by a refresh', async () => {
  gcp.setSecret('mistral-key', newKey());
  const { logger } = memoryLogger();
  const provider = await createUpstreamKeyProvider({
    config: configWith(),
    logger,
    sources: { production: source() },
    timer: false,
  });
  const before = provider.current('production');
  const key = newKey();
  gcp.setSecret('mistral-key', key);
  assert.deepEqual(await provider.refresh(), [{ environment: 'production', outcome: 'changed' }]);
  assert.equal(provider.current('production').reveal(), key);
  assert.equal(provider.fallback('production'), before);
});
