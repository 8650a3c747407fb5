import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { KEY_AGE_FILE } from '../../src/secrets/key-age.js';
import { keyFingerprint } from '../../src/secrets/key-shape.js';
import { createUpstreamKeyProvider } from '../../src/secrets/provider.js';
import type { KeySource } from '../../src/secrets/source.js';
import { configWith, memoryLogger, newKey } from './helpers.js';

const DAY_MS = 86_400_000;

function fixedSource(key: string): KeySource {
  return {
    kind: 'file',
    location: 'file /run/secrets/mistral',
    async load() {
      return { key: new Secret(key, this.location), version: null, own: true, warnings: [] };
    },
  };
}

async function open(dataDir: string, key: string, now: () => number, rotationDays?: number) {
  const log = memoryLogger();
  const upstreamKey = rotationDays === undefined ? {} : { rotationDays };
  const provider = await createUpstreamKeyProvider({
    config: { ...configWith(upstreamKey, ['production']), dataDir },
    logger: log.logger,
    sources: { production: fixedSource(key) },
    timer: false,
    now,
  });
  return { provider, log };
}

test('the first-seen date survives a restart; a key past the rotation period warns', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'mg-key-age-'));
  const key = newKey();
  const start = Date.parse('2030-01-01T00:00:00Z');

  const first = await open(dataDir, key, () => start);
  assert.equal(first.provider.status().production!.firstSeenAt, '2030-01-01T00:00:00.000Z');
  assert.equal(first.provider.status().production!.ageDays, 0);
  const file = await readFile(join(dataDir, KEY_AGE_FILE), 'utf8');
  assert.ok(!file.includes(key), 'the age file holds fingerprints, never keys');

  // A restart 89 days later: same first-seen date, no warning yet.
  const later = await open(dataDir, key, () => start + 89 * DAY_MS);
  const status = later.provider.status().production!;
  assert.equal(status.firstSeenAt, '2030-01-01T00:00:00.000Z');
  assert.equal(status.ageDays, 89);
  assert.deepEqual(status.warnings, []);

  // 91 days: the status and the start-up log say it is due.
  const due = await open(dataDir, key, () => start + 91 * DAY_MS);
  const overdue = due.provider.status().production!;
  assert.equal(overdue.ageDays, 91);
  assert.match(overdue.warnings.join('\n'), /91 days ago, past the rotation period of 90 days/);
  assert.ok(overdue.ok, 'an old key is a warning, not a failure');
  const warned = due.log
    .events()
    .find((e) => e.level === 40 && String(e.warning).includes('rotation period'));
  assert.equal(warned?.environment, 'production');
  assert.ok(!due.log.lines.join('\n').includes(key));
});

test('a pre-written first-seen file and a shorter rotation period', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'mg-key-age-'));
  const key = newKey();
  const fingerprint = keyFingerprint(new Secret(key, 'test'));
  await writeFile(
    join(dataDir, KEY_AGE_FILE),
    JSON.stringify({ [fingerprint]: '2030-01-01T00:00:00.000Z', 'not a fingerprint': 'x' }),
  );
  const { provider } = await open(dataDir, key, () => Date.parse('2030-01-12T00:00:00Z'), 10);
  const status = provider.status().production!;
  assert.equal(status.ageDays, 11);
  assert.match(status.warnings.join('\n'), /past the rotation period of 10 days/);
});

test('a damaged age file restarts the ages instead of stopping the start', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'mg-key-age-'));
  await writeFile(join(dataDir, KEY_AGE_FILE), '{ not json');
  const now = Date.parse('2030-05-01T00:00:00Z');
  const { provider } = await open(dataDir, newKey(), () => now);
  assert.equal(provider.status().production!.firstSeenAt, '2030-05-01T00:00:00.000Z');
  JSON.parse(await readFile(join(dataDir, KEY_AGE_FILE), 'utf8'));
});
