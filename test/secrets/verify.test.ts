import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { verifyKey } from '../../src/secrets/verify.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { newKey } from './helpers.js';

const valid = newKey();
let mock: MockMistral;

before(async () => {
  mock = await startMockMistral({ validKeys: [valid] });
});
after(() => mock.close());

test('an accepted key is valid, with the status', async () => {
  assert.deepEqual(await verifyKey(mock.url, new Secret(valid, 'test')), {
    result: 'valid',
    status: 200,
  });
  const request = mock.requests.at(-1)!;
  assert.equal(request.method, 'GET');
  assert.equal(request.path, '/v1/models');
  assert.equal(request.authorization, `Bearer ${valid}`);
});

test('a refused key is invalid, with 401', async () => {
  assert.deepEqual(await verifyKey(`${mock.url}/`, new Secret(newKey(), 'test')), {
    result: 'invalid',
    status: 401,
  });
});

test('a server error is unreachable with its status; no answer is unreachable alone', async () => {
  mock.setFault({ mode: '500', status: 503, count: 1 });
  assert.deepEqual(await verifyKey(mock.url, new Secret(valid, 'test')), {
    result: 'unreachable',
    status: 503,
  });
  const closed = await verifyKey('http://127.0.0.1:1', new Secret(valid, 'test'), {
    timeoutMs: 1000,
  });
  assert.deepEqual(closed, { result: 'unreachable' });
});
