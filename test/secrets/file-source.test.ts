import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { isUpstreamKeyError } from '../../src/secrets/errors.js';
import { fileKeySource } from '../../src/secrets/file-source.js';
import { createUpstreamKeyProvider } from '../../src/secrets/provider.js';
import { configWith, memoryLogger, newKey } from './helpers.js';

async function keyFile(content: string, mode = 0o600): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'mg-file-')), 'mistral-key');
  await writeFile(path, content);
  await chmod(path, mode);
  return path;
}

test('the file holds the key, space around it cut', async () => {
  const key = newKey();
  const loaded = await fileKeySource(await keyFile(`  ${key}\n`)).load();
  assert.equal(loaded.key.reveal(), key);
  assert.deepEqual(loaded.warnings, []);
});

test('a file readable by group or others loads with a warning naming its mode', async () => {
  const path = await keyFile(newKey(), 0o644);
  const { warnings } = await fileKeySource(path).load();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /readable by group or others \(mode 0644\)/);
});

test('a missing or empty file is refused with its code', async () => {
  await assert.rejects(fileKeySource('/nonexistent/mistral-key').load(), (e) =>
    isUpstreamKeyError(e, 'source_not_found'),
  );
  await assert.rejects(fileKeySource(await keyFile('\n')).load(), (e) =>
    isUpstreamKeyError(e, 'source_bad_value'),
  );
});

test('a write replaces the file whole and keeps its mode', async () => {
  const path = await keyFile(newKey(), 0o640);
  const key = newKey();
  await fileKeySource(path).write!(new Secret(key, 'test'));
  assert.equal(await readFile(path, 'utf8'), `${key}\n`);
  assert.equal((await stat(path)).mode & 0o777, 0o640);
});

test('a changed file is picked up by a refresh', async () => {
  const path = await keyFile(newKey());
  const { logger } = memoryLogger();
  const provider = await createUpstreamKeyProvider({
    config: configWith({ sources: { production: { source: 'file', path } } }),
    logger,
    timer: false,
  });
  assert.equal(provider.status().production?.location, `file ${path}`);
  const key = newKey();
  await writeFile(path, key);
  await provider.refresh();
  assert.equal(provider.current('production').reveal(), key);
});
