import assert from 'node:assert/strict';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { ConfigError } from '../../src/config/errors.js';
import { Secret } from '../../src/config/secret.js';
import { isGuardError } from '../../src/errors.js';
import { isUpstreamKeyError, UpstreamKeyError } from '../../src/secrets/errors.js';
import { keyFingerprint } from '../../src/secrets/key-shape.js';
import {
  createUpstreamKeyProvider,
  refreshOnSignal,
  type UpstreamKeyProviderOptions,
} from '../../src/secrets/provider.js';
import type { KeySource } from '../../src/secrets/source.js';
import { findLeaks } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { configWith, envOf, memoryLogger, newKey } from './helpers.js';

/** A source whose value and failure the test sets. */
function settableSource(initial: string) {
  let value = initial;
  let failure: Error | null = null;
  const source: KeySource = {
    kind: 'vault',
    location: 'vault secret/mistral field api_key',
    async load() {
      if (failure) throw failure;
      return { key: new Secret(value, this.location), version: null, own: true, warnings: [] };
    },
  };
  return {
    source,
    set(next: string) {
      value = next;
    },
    fail(error: Error | null) {
      failure = error;
    },
  };
}

function clock(start = Date.parse('2030-01-01T00:00:00Z')) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

let mock: MockMistral;
const keys = { a: newKey(), b: newKey(), c: newKey() };

before(async () => {
  mock = await startMockMistral({ validKeys: [keys.a, keys.b] });
});
after(() => mock.close());

function start(
  vars: Record<string, string>,
  overrides: Partial<UpstreamKeyProviderOptions> & {
    upstreamKey?: Record<string, unknown>;
    envs?: string[];
  } = {},
) {
  const log = memoryLogger();
  const { upstreamKey, envs, ...rest } = overrides;
  const provider = createUpstreamKeyProvider({
    config: configWith(upstreamKey, envs ?? ['production'], mock.url),
    logger: log.logger,
    readEnv: envOf(vars),
    timer: false,
    ...rest,
  });
  return { provider, log };
}

async function startupProblems(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.format();
  }
  assert.fail('expected the start to be refused');
}

describe('start', () => {
  test('every environment gets its key and a status without it', async () => {
    const { provider } = start(
      { MISTRAL_API_KEY_PRODUCTION: keys.a, MISTRAL_API_KEY: keys.b },
      { envs: ['production', 'development'], upstreamKey: { verify: true } },
    );
    const p = await provider;
    assert.equal(p.current('production').reveal(), keys.a);
    assert.equal(p.current('development').reveal(), keys.b);
    const status = p.status();
    assert.equal(status.production?.location, 'MISTRAL_API_KEY_PRODUCTION');
    assert.equal(status.development?.location, 'MISTRAL_API_KEY');
    assert.equal(status.production?.fingerprint, keyFingerprint(new Secret(keys.a, 'x')));
    assert.equal(status.production?.verified?.result, 'valid');
    assert.equal(status.production?.ok, true);
    assert.deepEqual(findLeaks(keys.a, { status: JSON.stringify(status) }), []);
  });

  test('a key that is not 32 letters and digits stops the start with a clear message', async () => {
    const text = await startupProblems(
      start({ MISTRAL_API_KEY_PRODUCTION: `"${keys.a}"` }).provider,
    );
    assert.match(text, /"production": the key of "production" from MISTRAL_API_KEY_PRODUCTION/);
    assert.match(text, /is not 32 letters and digits.*\(key_malformed\)/);
    assert.deepEqual(findLeaks(keys.a, { text }), []);
  });

  test('with shapeCheck warn, a malformed key starts with a warning', async () => {
    const { provider, log } = start(
      { MISTRAL_API_KEY_PRODUCTION: 'short-key' },
      { upstreamKey: { shapeCheck: 'warn' } },
    );
    const p = await provider;
    assert.equal(p.current('production').reveal(), 'short-key');
    assert.match(p.status().production!.warnings[0]!, /used anyway/);
    assert.ok(log.events().some((e) => e.msg === 'upstream key warning'));
  });

  test('production on the shared MISTRAL_API_KEY is refused; other environments may share', async () => {
    const text = await startupProblems(start({ MISTRAL_API_KEY: keys.a }).provider);
    assert.match(text, /"production" must have an upstream key of its own/);
    assert.match(
      text,
      /set MISTRAL_API_KEY_PRODUCTION or configure upstreamKey\.sources\.production/,
    );

    const dev = start({ MISTRAL_API_KEY: keys.a }, { envs: ['development', 'staging'] });
    assert.equal((await dev.provider).current('staging').reveal(), keys.a);
    const allowed = start(
      { MISTRAL_API_KEY: keys.a },
      { upstreamKey: { requireSeparateKeys: false } },
    );
    assert.equal((await allowed.provider).current('production').reveal(), keys.a);
  });

  test('production holding the same key as another environment is refused', async () => {
    const vars = { MISTRAL_API_KEY_PRODUCTION: keys.a, MISTRAL_API_KEY_STAGING: keys.a };
    const text = await startupProblems(start(vars, { envs: ['production', 'staging'] }).provider);
    assert.match(text, /its key from MISTRAL_API_KEY_PRODUCTION is also the key of "staging"/);
    const strict = start(vars, {
      envs: ['production', 'staging'],
      upstreamKey: { requireSeparateKeys: true },
    });
    assert.equal((await startupProblems(strict.provider)).match(/key_shared/g)?.length, 2);
  });

  test('a source that fails stops the start, naming the configured source', async () => {
    const { source, fail } = settableSource(keys.a);
    fail(new UpstreamKeyError('source_auth_failed', 'Vault refused our credentials (403)'));
    const text = await startupProblems(start({}, { sources: { production: source } }).provider);
    assert.match(
      text,
      /upstreamKey\.sources\.production.*Vault refused our credentials \(403\) \(source_auth_failed\)/,
    );
  });

  test('a key Mistral refuses at start shows as not ok, with an alert', async () => {
    const { provider, log } = start(
      { MISTRAL_API_KEY_PRODUCTION: keys.c },
      { upstreamKey: { verify: true } },
    );
    const status = (await provider).status().production!;
    assert.equal(status.ok, false);
    assert.deepEqual(status.verified && [status.verified.result, status.verified.status], [
      'invalid',
      401,
    ]);
    assert.equal(status.lastError?.code, 'key_invalid');
    assert.ok(log.events().some((e) => e.alert === 'upstream_key' && e.level === 50));
  });
});

describe('refresh', () => {
  test('a failed refresh keeps the last good key, logs it and shows it in the status', async () => {
    const s = settableSource(keys.a);
    const { provider, log } = start({}, { sources: { production: s.source } });
    const p = await provider;
    s.fail(new UpstreamKeyError('source_unavailable', 'Vault failed (503)'));
    assert.deepEqual(await p.refresh(), [
      { environment: 'production', outcome: 'failed', code: 'source_unavailable' },
    ]);
    assert.equal(p.current('production').reveal(), keys.a);
    assert.equal(p.status().production?.lastError?.code, 'source_unavailable');
    assert.ok(log.events().some((e) => e.msg === 'upstream key refresh failed'));
    s.fail(null);
    await p.refresh();
    assert.equal(p.status().production?.lastError, null);
  });

  test('a changed value Mistral refuses is not taken; the previous key stays', async () => {
    const s = settableSource(keys.a);
    const { provider } = start(
      {},
      { sources: { production: s.source }, upstreamKey: { verify: true } },
    );
    const p = await provider;
    s.set(keys.c);
    assert.deepEqual(await p.refresh('production'), [
      { environment: 'production', outcome: 'refused', code: 'key_invalid' },
    ]);
    assert.equal(p.current('production').reveal(), keys.a);
  });
  test('SIGHUP reads the sources again', async () => {
    const s = settableSource(keys.a);
    const p = await start({}, { sources: { production: s.source } }).provider;
    const stop = refreshOnSignal(p);
    s.set(keys.b);
    process.emit('SIGHUP', 'SIGHUP');
    stop();
    await p.refresh(); // joins the refresh the signal started
    assert.equal(p.current('production').reveal(), keys.b);
    assert.equal(process.listenerCount('SIGHUP'), 0);
  });
});

describe('rotate', () => {
  test('new requests use the new key at once; the old one is a fallback for the grace window', async () => {
    const c = clock();
    const { provider, log } = start(
      { MISTRAL_API_KEY_PRODUCTION: keys.a },
      { now: c.now, upstreamKey: { verify: true, graceSeconds: 60 } },
    );
    const p = await provider;
    const held = p.current('production');
    const result = await p.rotate('production', new Secret(keys.b, 'admin'), { actor: 'test:ops' });
    assert.equal(p.current('production').reveal(), keys.b);
    assert.equal(held.reveal(), keys.a, 'a request in flight keeps the key it holds');
    assert.equal(p.fallback('production')?.reveal(), keys.a);
    assert.deepEqual(result, {
      event: 'upstream_key.rotated',
      environment: 'production',
      actor: 'test:ops',
      at: '2030-01-01T00:00:00.000Z',
      source: 'env',
      location: 'MISTRAL_API_KEY_PRODUCTION, replaced in memory',
      fingerprint: keyFingerprint(new Secret(keys.b, 'x')),
      previousFingerprint: keyFingerprint(new Secret(keys.a, 'x')),
      written: false,
      version: null,
      verified: { result: 'valid', status: 200 },
      graceUntil: '2030-01-01T00:01:00.000Z',
    });
    c.advance(60_000);
    assert.equal(p.fallback('production'), null);
    // The environment still holds the old value: reading it again does not undo the rotation.
    await p.refresh();
    assert.equal(p.current('production').reveal(), keys.b);
    assert.deepEqual(findLeaks(keys.b, { log: log.lines.join('\n') }), []);
  });

  test('a writable source gets the new key, so other replicas read it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-rotate-'));
    const path = join(dir, 'key');
    await writeFile(path, keys.a);
    await chmod(path, 0o600);
    const upstreamKey = { sources: { production: { source: 'file', path } } };
    const replicaA = await start({}, { upstreamKey }).provider;
    const replicaB = await start({}, { upstreamKey }).provider;
    const result = await replicaA.rotate('production', new Secret(keys.b, 'cli'), {
      actor: 'test',
      verify: false,
    });
    assert.equal(result.written, true);
    assert.equal(result.location, `file ${path}`);
    assert.deepEqual(await replicaB.refresh(), [{ environment: 'production', outcome: 'changed' }]);
    assert.equal(replicaB.current('production').reveal(), keys.b);
    assert.equal(replicaB.fallback('production')?.reveal(), keys.a);
    assert.deepEqual(await replicaA.refresh(), [
      { environment: 'production', outcome: 'unchanged' },
    ]);
  });

  test('a key Mistral refuses or cannot check is not rotated to; nothing changes', async () => {
    const { provider } = start(
      { MISTRAL_API_KEY_PRODUCTION: keys.a },
      { upstreamKey: { verify: true } },
    );
    const p = await provider;
    await assert.rejects(p.rotate('production', new Secret(keys.c, 'x'), { actor: 't' }), (e) => {
      assert.ok(isUpstreamKeyError(e, 'key_invalid'));
      assert.equal(e.message, 'Mistral refused the key (401)');
      return true;
    });
    mock.setFault({ mode: '500', status: 503, count: 1 });
    await assert.rejects(p.rotate('production', new Secret(keys.b, 'x'), { actor: 't' }), (e) =>
      isUpstreamKeyError(e, 'key_unverified'),
    );
    assert.equal(p.current('production').reveal(), keys.a);
    assert.equal(p.fallback('production'), null);
  });

  test('a malformed, unchanged or shared new key is refused', async () => {
    const vars = { MISTRAL_API_KEY_PRODUCTION: keys.a, MISTRAL_API_KEY_STAGING: keys.b };
    const p = await start(vars, { envs: ['production', 'staging'] }).provider;
    const rotate = (key: string) => p.rotate('production', new Secret(key, 'x'), { actor: 't' });
    await assert.rejects(rotate('too-short'), (e) => isUpstreamKeyError(e, 'key_malformed'));
    await assert.rejects(rotate(keys.a), (e) => isUpstreamKeyError(e, 'key_unchanged'));
    await assert.rejects(rotate(keys.b), (e) => isUpstreamKeyError(e, 'key_shared'));
    await assert.rejects(
      p.rotate('production', new Secret(keys.c, 'x'), {
        actor: 't',
        verify: false,
        requireWrite: true,
      }),
      (e) => isUpstreamKeyError(e, 'source_read_only'),
    );
  });
});

describe('onUnauthorized', () => {
  test('a new key refused during the grace window falls back to the old one, with an alert', async () => {
    const { provider, log } = start({ MISTRAL_API_KEY_PRODUCTION: keys.a });
    const p = await provider;
    await p.rotate('production', new Secret(keys.c, 'x'), { actor: 't', verify: false });
    const retry = p.onUnauthorized('production', p.current('production'));
    assert.equal(retry?.reveal(), keys.a);
    assert.equal(p.current('production').reveal(), keys.a);
    assert.equal(p.status().production?.lastError?.code, 'key_invalid');
    const alert = log.events().find((e) => e.msg === 'upstream key refused; previous key restored');
    assert.equal(alert?.alert, 'upstream_key');
    assert.equal(alert?.fingerprint, keyFingerprint(new Secret(keys.c, 'x')));
  });

  test('an old key revoked after the rotation is dropped and never sent again', async () => {
    const p = await start({ MISTRAL_API_KEY_PRODUCTION: keys.a }).provider;
    await p.rotate('production', new Secret(keys.b, 'x'), { actor: 't' });
    const retry = p.onUnauthorized('production', new Secret(keys.a, 'in flight'));
    assert.equal(retry?.reveal(), keys.b);
    assert.equal(p.fallback('production'), null);
  });

  test('the key in use refused with no fallback gives null and one alert', async () => {
    const { provider, log } = start({ MISTRAL_API_KEY_PRODUCTION: keys.a });
    const p = await provider;
    for (let i = 0; i < 5; i++)
      assert.equal(p.onUnauthorized('production', p.current('production')), null);
    const alerts = log.events().filter((e) => e.msg === 'upstream key refused; no fallback');
    assert.equal(alerts.length, 1);
    assert.equal(p.status().production?.ok, false);
    assert.throws(
      () => p.current('staging'),
      (e) => isGuardError(e, 'upstream_auth_failed'),
    );
  });
});

test('rotation under load: no request fails and the old key stops being used', async () => {
  const { provider, log } = start(
    { MISTRAL_API_KEY_PRODUCTION: keys.a },
    { upstreamKey: { verify: true } },
  );
  const p = await provider;
  mock.setValidKeys([keys.a, keys.b]);
  mock.requests.length = 0;
  let failures = 0;
  let running = true;

  async function send(key: Secret): Promise<number> {
    const res = await request(`${mock.url}/v1/models`, {
      headers: { authorization: `Bearer ${key.reveal()}` },
    });
    await res.body.dump();
    return res.statusCode;
  }
  async function client(): Promise<void> {
    while (running) {
      const key = p.current('production');
      let status = await send(key);
      if (status === 401) {
        const retry = p.onUnauthorized('production', key);
        if (retry) status = await send(retry);
      }
      if (status !== 200) failures++;
    }
  }

  const clients = Array.from({ length: 4 }, client);
  await new Promise((r) => setTimeout(r, 50));
  await p.rotate('production', new Secret(keys.b, 'x'), { actor: 'load-test' });
  await new Promise((r) => setTimeout(r, 50));
  mock.setValidKeys([keys.b]); // the old key is revoked upstream
  await new Promise((r) => setTimeout(r, 50));
  const revokedAt = mock.requests.length;
  await new Promise((r) => setTimeout(r, 50));
  running = false;
  await Promise.all(clients);

  assert.equal(failures, 0);
  const used = mock.requests.map((r) => r.authorization);
  const firstNew = used.indexOf(`Bearer ${keys.b}`);
  assert.ok(firstNew > 0 && used.slice(0, firstNew).every((a) => a === `Bearer ${keys.a}`));
  assert.ok(used.slice(revokedAt).every((a) => a === `Bearer ${keys.b}`));
  assert.deepEqual(findLeaks(keys.a, { log: log.lines.join('\n') }), []);
  assert.deepEqual(findLeaks(keys.b, { log: log.lines.join('\n') }), []);
  mock.setValidKeys([keys.a, keys.b]);
});
