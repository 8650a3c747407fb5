import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runDoctor } from '../../src/scan/doctor.js';
import { cli, fakeMistralKey, tempRepo } from './helpers.js';

interface Item {
  id: string;
  status: string;
  detail: string;
}

function statuses(stdout: string): Record<string, string> {
  const { items } = JSON.parse(stdout) as { items: Item[] };
  return Object.fromEntries(items.map((i) => [i.id, i.status]));
}

const IGNORES = '.env\n.env.local\n.env.*.local\n*.pem\n*.key\nsecrets/\n.mistral-guard/\n';

test('doctor fails a project with a key in its history, no ignores, a shared key and audit off', async (t) => {
  const repo = tempRepo(t);
  const key = fakeMistralKey();
  repo.write('old.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
  repo.commit('add');
  repo.git('rm', '-q', 'old.env');
  repo.write(
    'mistral-guard.yaml',
    'environment: staging\nenvironments: [staging, production]\naudit:\n  enabled: false\n',
  );
  repo.commit('remove');
  const run = await cli(['doctor', '--format', 'json'], {
    cwd: repo.dir,
    env: { MISTRAL_API_KEY: key },
  });
  assert.equal(run.code, 1, run.stderr);
  assert.deepEqual(statuses(run.stdout), {
    code: 'pass',
    history: 'fail',
    gitignore: 'fail',
    config: 'pass',
    keySource: 'pass',
    distinctKeys: 'fail',
    validation: 'pass',
    guard: 'pass',
    audit: 'fail',
    limits: 'pass',
    sanitize: 'warn',
    errors: 'pass',
    https: 'pass',
    keyAge: 'skip',
  });
  assert.ok(!run.stdout.includes(key) && !run.stderr.includes(key));
});

test('doctor passes a clean project whose key comes from the environment', async (t) => {
  const repo = tempRepo(t);
  repo.write('.gitignore', IGNORES);
  repo.write('src/app.ts', 'export const model = "mistral-small-latest";\n');
  repo.commit('start');
  const run = await cli(['doctor'], {
    cwd: repo.dir,
    env: { MISTRAL_API_KEY_DEVELOPMENT: fakeMistralKey() },
  });
  assert.equal(run.code, 0, run.stdout);
  assert.match(run.stdout, /^PASS {2}No key in the code/m);
  assert.match(
    run.stdout,
    /^WARN {2}Output sanitising on +output sanitising off: development\n +fix: /m,
  );
  assert.match(run.stdout, /\d+ passed, 1 warnings, 0 failed\.\n$/);
});

test('doctor warns about virtual keys older than the rotation period', async (t) => {
  const repo = tempRepo(t);
  repo.write('.gitignore', IGNORES);
  repo.commit('start');
  const created = await cli(['keys', 'create', '--name', 'ci', '--json'], { cwd: repo.dir });
  assert.equal(created.code, 0, created.stderr);
  const { id } = JSON.parse(created.stdout) as { id: string };
  const now = new Date(Date.now() + 100 * 86_400_000);
  const items = await runDoctor({ dir: repo.dir, history: false, now });
  const keyAge = items.find((i) => i.id === 'keyAge');
  assert.equal(keyAge?.status, 'warn');
  assert.match(keyAge?.detail ?? '', new RegExp(`older than 90 days: ${id}$`));
  const fresh = await runDoctor({ dir: repo.dir, history: false, maxKeyAgeDays: 365, now });
  assert.equal(fresh.find((i) => i.id === 'keyAge')?.status, 'pass');
});
