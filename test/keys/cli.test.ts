import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isGuardError } from '../../src/errors.js';
import { createAuthenticator } from '../../src/keys/authenticator.js';
import { hashVirtualKey, isWellFormedVirtualKey } from '../../src/keys/format.js';
import { openSqliteKeyStore } from '../../src/keys/sqlite-store.js';

// The real entry point, run from TypeScript source, so the test needs no build.
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Sandbox {
  dataDir: string;
  /** Every output so far, for the canary checks. */
  outputs: string[];
  run(...args: string[]): Promise<Run>;
}

function sandbox(t: TestContext): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'mg-keys-cli-'));
  const dataDir = join(root, 'data');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const outputs: string[] = [];
  const run = (...args: string[]) =>
    new Promise<Run>((resolve) => {
      // A bare environment and an empty working directory: a developer's MISTRAL_GUARD_ENV,
      // .env or mistral-guard.yaml must not change what the test sees.
      const proc = spawn(
        process.execPath,
        ['--import', TSX, MAIN, ...args, '--data-dir', dataDir],
        {
          cwd: root,
          env: { PATH: process.env.PATH, HOME: root },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (d) => {
        stdout += d;
      });
      proc.stderr.on('data', (d) => {
        stderr += d;
      });
      proc.once('close', (code) => {
        outputs.push(stdout, stderr);
        resolve({ code, stdout, stderr });
      });
    });
  return { dataDir, outputs, run };
}

async function createJson(box: Sandbox, ...args: string[]): Promise<Record<string, unknown>> {
  const result = await box.run('keys', 'create', '--json', ...args);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

test('keys create --json prints the new key with its id and chosen policy', async (t) => {
  const box = sandbox(t);
  const before = Date.now();
  const created = await createJson(
    box,
    '--name',
    'ci-bot',
    '--env',
    'staging',
    '--models',
    'mistral-small-latest, codestral-latest',
    '--max-tokens',
    '2048',
    '--expires',
    '30d',
  );

  assert.match(created.id as string, /^key_[0-9A-Za-z]{16}$/);
  assert.ok(isWellFormedVirtualKey(created.key));
  assert.equal(created.name, 'ci-bot');
  assert.equal(created.environment, 'staging');
  assert.deepEqual(created.models, ['mistral-small-latest', 'codestral-latest']);
  assert.equal(created.maxTokens, 2048);
  const expires = Date.parse(created.expiresAt as string) - before;
  assert.ok(Math.abs(expires - 30 * 24 * 3_600_000) < 60_000);
  assert.equal('hash' in created, false);
});

test('keys create defaults to the configured environment and the profile policy', async (t) => {
  const box = sandbox(t);
  const created = await createJson(box, '--name', 'plain');
  assert.equal(created.environment, 'development');
  assert.equal(created.models, null);
  assert.equal(created.maxTokens, null);
  assert.equal(created.expiresAt, null);
});

test('keys create in text prints the key on its own line and says it is shown once', async (t) => {
  const box = sandbox(t);
  const result = await box.run('keys', 'create', '--name', 'human');
  assert.equal(result.code, 0, result.stderr);
  const keyLines = result.stdout.split('\n').filter((line) => isWellFormedVirtualKey(line));
  assert.equal(keyLines.length, 1);
  assert.match(result.stderr, /shown only this once/);
});

test('the created key never appears again, in output or in the database files', async (t) => {
  const box = sandbox(t);
  const created = await createJson(box, '--name', 'canary');
  const key = created.key as string;
  const id = created.id as string;
  const hash = hashVirtualKey(key);
  const printed = box.outputs.length;

  await box.run('keys', 'list');
  await box.run('keys', 'list', '--json');
  await box.run('keys', 'show', id);
  await box.run('keys', 'show', id, '--json');
  await box.run('keys', 'show', key);
  await box.run('keys', 'update', id, '--rpm', '5');
  await box.run('keys', 'update', key, '--rpm', '5');
  await box.run('keys', 'update', id, '--json', '--models', 'mistral-*');
  await box.run('keys', 'usage', id);
  await box.run('keys', 'usage', key, '--json');
  await box.run('keys', 'revoke', key);
  await box.run('keys', 'revoke', id);
  await box.run('keys', 'revoke', id, '--json');
  await box.run('keys', 'list', '--all');
  await box.run('keys', 'list', '--all', '--json');
  await box.run('keys', 'create', '--name', 'other', '--json');

  const later = box.outputs.slice(printed).join('\n');
  for (const secret of [key, key.slice(3, 35), hash, hash.slice(0, 16)]) {
    assert.ok(!later.includes(secret), 'a later output holds the key or its hash');
  }
  assert.ok(!box.outputs.slice(0, printed).join('\n').includes(hash));

  const files = readdirSync(box.dataDir).map((f) => readFileSync(join(box.dataDir, f)));
  const bytes = Buffer.concat(files);
  assert.equal(bytes.includes(key), false);
  assert.equal(bytes.includes(key.slice(3, 35)), false);
  // The hash is there, so the search above looked in the right place.
  assert.equal(bytes.includes(hash), true);
});

test('keys list hides revoked keys unless --all, and shows no hash or key', async (t) => {
  const box = sandbox(t);
  const kept = await createJson(box, '--name', 'kept');
  const gone = await createJson(box, '--name', 'gone');
  assert.equal((await box.run('keys', 'revoke', gone.id as string)).code, 0);

  const listed = JSON.parse((await box.run('keys', 'list', '--json')).stdout) as Array<{
    id: string;
  }>;
  assert.deepEqual(
    listed.map((k) => k.id),
    [kept.id],
  );
  const all = JSON.parse((await box.run('keys', 'list', '--all', '--json')).stdout) as Array<
    Record<string, unknown>
  >;
  assert.deepEqual(
    all.map((k) => [k.id, k.status]),
    [
      [kept.id, 'active'],
      [gone.id, 'revoked'],
    ],
  );
  for (const entry of all) {
    assert.equal('hash' in entry || 'key' in entry, false);
  }
  const text = (await box.run('keys', 'list')).stdout;
  assert.ok(text.includes(kept.id as string) && !text.includes(gone.id as string));
});

test('a bad flag value exits with 2 and a message naming the flag, not the value', async (t) => {
  const box = sandbox(t);
  const cases: Array<[string[], RegExp]> = [
    [['--max-tokens', 'sk-pasted-secret-1'], /--max-tokens must be a positive integer/],
    [['--max-tokens', '0'], /--max-tokens must be a positive integer/],
    [['--expires', '2001-01-01'], /--expires must be in the future/],
    [['--expires', '2027-02-30'], /--expires must be a duration/],
    [['--expires', 'sk-pasted-secret-1'], /--expires must be a duration/],
    [['--models', ' , '], /--models must name at least one model/],
    [['--models', 'sk pasted secret 1'], /--models must be model names/],
  ];
  for (const [args, message] of cases) {
    const result = await box.run('keys', 'create', '--name', 'x', ...args);
    assert.equal(result.code, 2, args.join(' '));
    assert.match(result.stderr, message);
    assert.ok(!result.stderr.includes('pasted'));
  }
  const noName = await box.run('keys', 'create');
  assert.equal(noName.code, 2);
  assert.match(noName.stderr, /--name/);
  const badEnv = await box.run('keys', 'create', '--name', 'x', '--env', 'nowhere');
  assert.equal(badEnv.code, 2);
  assert.equal((await box.run('keys', 'list', '--json')).stdout.trim(), '[]');
});

test('an unknown key id ends with exit code 1, a malformed one with 2', async (t) => {
  const box = sandbox(t);
  const unknown = await box.run('keys', 'show', 'key_0000000000000000');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no virtual key with id key_0000000000000000/);
  assert.equal((await box.run('keys', 'revoke', 'key_0000000000000000')).code, 1);
  const malformed = await box.run('keys', 'show', 'not-an-id');
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /ID must be/);
});

test('a key revoked by the CLI is refused by a running authenticator at once', async (t) => {
  const box = sandbox(t);
  const created = await createJson(box, '--name', 'live');
  const store = openSqliteKeyStore(box.dataDir);
  t.after(() => store.close());
  const auth = createAuthenticator({ store, changes: store.changes() });
  const header = `Bearer ${created.key as string}`;
  assert.equal((await auth.authenticate(header)).id, created.id);

  assert.equal((await box.run('keys', 'revoke', created.id as string)).code, 0);
  const error = await auth.authenticate(header).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(isGuardError(error, 'revoked_api_key'));
});
