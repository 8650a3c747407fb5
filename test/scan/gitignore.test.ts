import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cli, scratch, tempRepo } from './helpers.js';

interface Report {
  patterns: Array<{ pattern: string; status: string; rule?: string }>;
  tracked: string[];
  added: string[];
  ok: boolean;
}

// Each test builds its own repository and mostly waits on CLI processes: two at a time.
describe('check gitignore', { concurrency: 2 }, () => {
  test('check gitignore follows git rules, negations and local excludes, and lists tracked key files', async (t) => {
    const repo = tempRepo(t);
    repo.write('.gitignore', 'node_modules/\n.env*\n!.env.local\n*.pem\n');
    repo.write('.git/info/exclude', 'secrets/\n');
    repo.write('.env.example', 'MISTRAL_API_KEY=\n');
    repo.write('config/server.key', 'not really a key\n');
    repo.git('add', '-f', '.gitignore', '.env.example', 'config/server.key');
    repo.commit('start');
    const run = await cli(['check', 'gitignore', '--format', 'json'], { cwd: repo.dir });
    assert.equal(run.code, 1, run.stderr);
    const report = JSON.parse(run.stdout) as Report;
    assert.deepEqual(
      report.patterns.map((p) => `${p.pattern} ${p.status}`),
      [
        '.env ignored',
        '.env.local missing',
        '.env.*.local ignored',
        '*.pem ignored',
        '*.key missing',
        'secrets/ local',
      ],
    );
    assert.equal(report.patterns[1]?.rule, '.gitignore:3: !.env.local');
    assert.deepEqual(report.tracked, ['config/server.key']);
  });

  test('check gitignore --fix appends what is missing; the check passes once key files are untracked', async (t) => {
    const repo = tempRepo(t);
    repo.write('.gitignore', 'dist/\n!.env.local');
    repo.write('deploy/tls.pem', 'cert\n');
    repo.commit('start');
    const fixed = await cli(['check', 'gitignore', '--fix', '--format', 'json'], { cwd: repo.dir });
    const report = JSON.parse(fixed.stdout) as Report;
    assert.deepEqual(report.added, [
      '.env',
      '.env.local',
      '.env.*.local',
      '*.pem',
      '*.key',
      'secrets/',
    ]);
    assert.ok(report.patterns.every((p) => p.status === 'ignored'));
    assert.deepEqual(report.tracked, ['deploy/tls.pem']);
    assert.equal(fixed.code, 1);
    assert.equal(
      readFileSync(join(repo.dir, '.gitignore'), 'utf8'),
      'dist/\n!.env.local\n\n# Secrets (added by mistral-guard check gitignore)\n.env\n.env.local\n.env.*.local\n*.pem\n*.key\nsecrets/\n',
    );
    repo.git('rm', '-q', '--cached', 'deploy/tls.pem');
    const clean = await cli(['check', 'gitignore'], { cwd: repo.dir });
    assert.equal(clean.code, 0, clean.stdout);
    assert.match(clean.stdout, /^ {2}pass {2}\.env +ignored \(\.gitignore:5: \.env\)/);
  });

  test('check gitignore outside a repository is a usage error', async (t) => {
    const run = await cli(['check', 'gitignore'], { cwd: scratch(t) });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^error: check gitignore needs a git repository/);
  });
});
