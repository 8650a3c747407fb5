import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { readScanSettings } from '../../src/scan/config.js';
import { brief, cli, fakeMistralKey, findingsOf, scratch, tempRepo } from './helpers.js';

// Each test builds its own repository and mostly waits on CLI processes: two at a time.
describe('scan configuration', { concurrency: 2 }, () => {
  test('scan takes allow-lists and the baseline from the scan section, and flags add to them', async (t) => {
    const repo = tempRepo(t);
    const [fixture, documented, accepted, fresh] = [
      fakeMistralKey(),
      fakeMistralKey(),
      fakeMistralKey(),
      fakeMistralKey(),
    ];
    repo.write(
      'mistral-guard.yaml',
      [
        'environment: production',
        'scan:',
        '  allowPaths: [test/fixtures/]',
        `  allowPatterns: ['^${documented.slice(0, 10)}']`,
        '  baseline: .mistral-guard/baseline.json',
        '',
      ].join('\n'),
    );
    repo.write('test/fixtures/keys.env', `MISTRAL_API_KEY=${fixture}\n`);
    repo.write('docs/setup.md', `# Setup\n\nMISTRAL_API_KEY=${documented}\n`);
    repo.write('src/app.env', `MISTRAL_API_KEY=${accepted}\n`);
    mkdirSync(join(repo.dir, '.mistral-guard'));

    const update = await cli(['scan', '--update-baseline'], { cwd: repo.dir });
    assert.equal(update.code, 0, update.stderr);
    assert.match(update.stderr, /baseline\.json: 1 accepted\.\n$/);

    repo.write('src/new.env', `# new\nMISTRAL_API_KEY=${fresh}\n`);
    // NODE_ENV names no gateway profile: only the scan section of the file counts here.
    const run = await cli(['scan', '--format', 'json'], {
      cwd: repo.dir,
      env: { NODE_ENV: 'test' },
    });
    assert.equal(run.code, 1, run.stderr);
    assert.deepEqual(brief(findingsOf(run)), ['src/new.env:2:17 mistral_api_key']);
    const stats = (JSON.parse(run.stdout) as { stats: Record<string, number> }).stats;
    assert.deepEqual([stats.allowedByRule, stats.baselined], [1, 1]);

    // From a subdirectory the file at the repository root applies; a flag adds a path.
    const sub = await cli(['scan', '.', '--allow-path', 'src/new.env', '--format', 'json'], {
      cwd: join(repo.dir, 'src'),
    });
    assert.equal(sub.code, 0, sub.stderr);
    assert.deepEqual(findingsOf(sub), []);
  });

  test('a bad scan section is a usage error pointing into the file, without the value', async (t) => {
    const repo = tempRepo(t);
    repo.write('mistral-guard.yaml', "scan:\n  allowPatterns:\n    - 'ok'\n    - '(SECRETVALUE'\n");
    const run = await cli(['scan'], { cwd: repo.dir });
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /scan\.allowPatterns\[1\] \[from .*mistral-guard\.yaml:4:7\]: expected a regular expression/,
    );
    assert.ok(!run.stderr.includes('SECRETVALUE'));
  });

  test('readScanSettings reads only the scan section, reports its problems and resolves the baseline', async (t) => {
    const dir = scratch(t);
    const file = join(dir, 'conf', 'guard.yaml');
    mkdirSync(join(dir, 'conf'));
    writeFileSync(
      file,
      'server:\n  port: not-a-port\nscan:\n  allowPaths: [vendor/]\n  baseline: ../baseline.json\n',
    );
    const settings = await readScanSettings({ cwd: dir, configPath: 'conf/guard.yaml' });
    assert.deepEqual(settings, {
      allowPaths: ['vendor/'],
      allowPatterns: [],
      baseline: join(dir, 'baseline.json'),
      file,
    });
    assert.deepEqual(await readScanSettings({ cwd: dir, env: {} }), {
      allowPaths: [],
      allowPatterns: [],
      file: null,
    });

    writeFileSync(file, 'scan:\n  allowPath: [vendor/]\n  allowPatterns: [3]\n');
    const error = await readScanSettings({ cwd: dir, configPath: file }).catch((e: unknown) => e);
    assert.ok(error instanceof ConfigError);
    assert.deepEqual(
      error.problems.map((p) => `${p.path} ${p.line}:${p.column} ${p.message}`),
      [
        'scan.allowPatterns[0] 3:19 Invalid input: expected string, received number',
        'scan 2:3 unknown field "allowPath"',
      ],
    );
    const missing = await readScanSettings({ cwd: dir, configPath: 'nope.yaml' }).catch((e) => e);
    assert.match((missing as ConfigError).format(), /nope\.yaml\]: file not found/);
  });

  test('the gateway configuration accepts the scan section', async (t) => {
    const dir = scratch(t);
    writeFileSync(join(dir, 'mistral-guard.yaml'), 'scan:\n  allowPatterns: ["^EXAMPLE"]\n');
    const config = await loadConfig({ cwd: dir, env: {} });
    assert.deepEqual(config.scan, { allowPaths: [], allowPatterns: ['^EXAMPLE'] });
  });
});
