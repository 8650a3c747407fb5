import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { awsKeySource } from '../../src/secrets/aws-source.js';
import { isUpstreamKeyError } from '../../src/secrets/errors.js';
import { createUpstreamKeyProvider } from '../../src/secrets/provider.js';
import { type FakeAws, startFakeAws } from './fake-aws.js';
import { configWith, envOf, FAST_RETRY, memoryLogger, newKey } from './helpers.js';

const credentials = {
  accessKeyId: 'AKIAFAKEFAKEFAKE0001',
  secretAccessKey: 'fake/secret/for+tests',
};
const env = {
  AWS_ACCESS_KEY_ID: credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
};
let aws: FakeAws;

before(async () => {
  aws = await startFakeAws(credentials);
});
after(() => aws.close());

function source(options: { secretId: string; field?: string }, vars: Record<string, string> = env) {
  return awsKeySource({
    ...options,
    region: 'eu-west-3',
    endpoint: aws.url,
    readEnv: envOf(vars),
    timeoutMs: 2000,
    retry: FAST_RETRY,
  });
}

test('a plain string secret is read with a signed GetSecretValue call', async () => {
  const key = newKey();
  aws.setSecret('prod/plain', key);
  const signedBefore = aws.signatures.length;
  const loaded = await source({ secretId: 'prod/plain' }).load();
  assert.equal(loaded.key.reveal(), key);
  assert.match(loaded.version ?? '', /^[0-9a-f-]{36}$/);
  assert.deepEqual(aws.signatures.slice(signedBefore), ['valid']);
  const request = aws.requests.at(-1)!;
  assert.equal(request.headers['x-amz-target'], 'secretsmanager.GetSecretValue');
  assert.equal(request.headers['content-type'], 'application/x-amz-json-1.1');
  assert.deepEqual(JSON.parse(request.body), {
    SecretId: 'prod/plain',
    VersionStage: 'AWSCURRENT',
  });
});

test('one field of a JSON secret is the key', async () => {
  const key = newKey();
  aws.setSecret('prod/json', JSON.stringify({ api_key: key, other: 'kept' }));
  assert.equal(
    (await source({ secretId: 'prod/json', field: 'api_key' }).load()).key.reveal(),
    key,
  );
  await assert.rejects(source({ secretId: 'prod/json', field: 'nope' }).load(), (e) =>
    isUpstreamKeyError(e, 'source_not_found'),
  );
  await assert.rejects(source({ secretId: 'prod/plain', field: 'api_key' }).load(), (e) =>
    isUpstreamKeyError(e, 'source_bad_value'),
  );
});

test('bad credentials are refused as source_auth_failed', async () => {
  const wrongSecret = { ...env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' };
  await assert.rejects(source({ secretId: 'prod/plain' }, wrongSecret).load(), (e) => {
    assert.ok(isUpstreamKeyError(e, 'source_auth_failed'));
    assert.match(e.message, /InvalidSignatureException/);
    return true;
  });
  assert.equal(aws.signatures.at(-1), 'invalid');
  const unknownKey = { ...env, AWS_ACCESS_KEY_ID: 'AKIAUNKNOWNUNKNOWN00' };
  await assert.rejects(source({ secretId: 'prod/plain' }, unknownKey).load(), (e) =>
    isUpstreamKeyError(e, 'source_auth_failed'),
  );
  await assert.rejects(source({ secretId: 'prod/plain' }, {}).load(), (e) => {
    assert.ok(isUpstreamKeyError(e, 'source_auth_failed'));
    assert.match(e.message, /AWS_ACCESS_KEY_ID/);
    return true;
  });
});

test('a missing secret is source_not_found', async () => {
  await assert.rejects(source({ secretId: 'does/not/exist' }).load(), (e) => {
    assert.ok(isUpstreamKeyError(e, 'source_not_found'));
    assert.match(e.message, /ResourceNotFoundException/);
    return true;
  });
});

test('throttling is retried, and reported when it lasts', async () => {
  const key = newKey();
  aws.setSecret('prod/throttled', key);
  aws.throttle(1);
  assert.equal((await source({ secretId: 'prod/throttled' }).load()).key.reveal(), key);
  aws.throttle(5);
  await assert.rejects(source({ secretId: 'prod/throttled' }).load(), (e) =>
    isUpstreamKeyError(e, 'source_throttled'),
  );
  aws.throttle(0);
});

test('a write adds a version as AWSCURRENT and keeps the other JSON fields', async () => {
  aws.setSecret('prod/rotate', JSON.stringify({ api_key: newKey(), note: 'kept' }));
  const key = newKey();
  const s = source({ secretId: 'prod/rotate', field: 'api_key' });
  const { version } = await s.write!(new Secret(key, 'test'));
  assert.ok(version);
  assert.deepEqual(JSON.parse(aws.secret('prod/rotate')!), { api_key: key, note: 'kept' });
  assert.equal((await s.load()).key.reveal(), key);
  assert.equal(aws.requests.at(-2)!.headers['x-amz-target'], 'secretsmanager.PutSecretValue');
});

test('a service that does not answer is source_unavailable', async () => {
  const closed = awsKeySource({
    secretId: 'x',
    region: 'eu-west-3',
    endpoint: 'http://127.0.0.1:1',
    readEnv: envOf(env),
    timeoutMs: 1000,
    retry: FAST_RETRY,
  });
  await assert.rejects(closed.load(), (e) => isUpstreamKeyError(e, 'source_unavailable'));
});

test('a changed value is picked up by a refresh', async () => {
  aws.setSecret('prod/refresh', newKey());
  const { logger } = memoryLogger();
  const provider = await createUpstreamKeyProvider({
    config: configWith(),
    logger,
    sources: { production: source({ secretId: 'prod/refresh' }) },
    timer: false,
  });
  assert.deepEqual(await provider.refresh(), [{ environment: 'production', outcome: 'unchanged' }]);
  const key = newKey();
  aws.setSecret('prod/refresh', key);
  assert.deepEqual(await provider.refresh(), [{ environment: 'production', outcome: 'changed' }]);
  assert.equal(provider.current('production').reveal(), key);
});
