import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { runDoctor } from '../../src/scan/doctor.js';
import { gatewayItems } from '../../src/scan/doctor-config.js';
import { cli, fakeMistralKey, scratch, tempRepo } from './helpers.js';

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

// Each test builds its own repository and mostly waits on CLI processes: two at a time.
describe('doctor', { concurrency: 2 }, () => {
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

  function itemsOf(stdout: string): Record<string, Item> {
    const { items } = JSON.parse(stdout) as { items: Item[] };
    return Object.fromEntries(items.map((i) => [i.id, i]));
  }

  test('doctor reads secret-manager sources, finds two environments on one secret, and honours the scan section', async (t) => {
    const repo = tempRepo(t);
    repo.write('.gitignore', IGNORES);
    repo.write(
      'mistral-guard.yaml',
      [
        'environment: production',
        'environments: [production, staging]',
        'server: { host: 0.0.0.0, allowInsecureHttp: true }',
        'upstreamKey:',
        '  sources:',
        '    production: { source: aws, secretId: mistral-production, region: eu-west-3 }',
        '    staging: { source: aws, secretId: mistral-production, region: eu-west-3 }',
        'scan:',
        '  allowPaths: [test/fixtures/]',
        '  baseline: accepted.json',
        '',
      ].join('\n'),
    );
    repo.write('test/fixtures/keys.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    repo.write('old.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    repo.commit('add');
    repo.git('rm', '-q', 'old.env');
    repo.commit('remove');
    const accept = await cli(['scan', '--history', '--update-baseline'], { cwd: repo.dir });
    assert.match(accept.stderr, /accepted\.json: 1 accepted\.\n$/);

    const run = await cli(['doctor', '--format', 'json'], { cwd: repo.dir });
    assert.equal(run.code, 1, run.stderr);
    const items = itemsOf(run.stdout);
    assert.deepEqual(
      ['code', 'history', 'keySource', 'distinctKeys', 'https'].map(
        (id) => `${id} ${items[id]?.status}`,
      ),
      ['code pass', 'history pass', 'keySource pass', 'distinctKeys fail', 'https fail'],
    );
    assert.equal(
      items.keySource?.detail,
      'upstream keys from production: AWS Secrets Manager, staging: AWS Secrets Manager',
    );
    assert.equal(items.distinctKeys?.detail, 'one key shared by production and staging');
    assert.match(items.https?.detail ?? '', /^plain HTTP served to other hosts on 0\.0\.0\.0/);
  });

  test('doctor fails a production key read from .env or from a key file inside the project', async (t) => {
    const repo = tempRepo(t);
    repo.write('.gitignore', IGNORES);
    repo.write(
      'mistral-guard.yaml',
      [
        'environment: production',
        'environments: [production, staging]',
        'upstreamKey:',
        '  sources:',
        '    production: { source: file, path: secrets/mistral.key }',
        '',
      ].join('\n'),
    );
    repo.write('.env', `MISTRAL_API_KEY_STAGING=${fakeMistralKey()}\n`);
    repo.commit('start');
    const run = await cli(['doctor', '--no-history', '--format', 'json'], { cwd: repo.dir });
    const items = itemsOf(run.stdout);
    assert.equal(items.keySource?.status, 'fail');
    assert.equal(
      items.keySource?.detail,
      `key read from ${join(repo.dir, '.env')} for staging; key file inside the project for production`,
    );
    assert.equal(items.distinctKeys?.status, 'pass');
  });

  test('the HTTPS item passes TLS, a loopback address or a trusted proxy, and warns otherwise', async (t) => {
    const dir = scratch(t);
    const https = async (server: string) => {
      writeFileSync(join(dir, 'mistral-guard.yaml'), `server: ${server}\n`);
      const item = gatewayItems(await loadConfig({ cwd: dir, env: {} })).https!;
      return `${item.status}: ${item.detail}`;
    };
    assert.equal(
      await https('{ host: 0.0.0.0, tls: { cert: c.pem, key: k.pem } }'),
      'pass: the gateway terminates TLS (server.tls)',
    );
    assert.equal(
      await https('{ host: ::1 }'),
      'pass: listens on ::1 only; expose it through HTTPS',
    );
    assert.equal(
      await https('{ host: 0.0.0.0, trustProxy: [10.0.0.0/8] }'),
      'pass: plain HTTP only from loopback and 1 trusted proxy address(es) forwarding HTTPS',
    );
    assert.equal(
      await https('{ host: 0.0.0.0 }'),
      'warn: listens on 0.0.0.0 without TLS or a trusted proxy: other hosts are refused',
    );
  });
});
