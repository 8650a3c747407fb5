import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cli, fakeMistralKey, type Repo, tempRepo } from './helpers.js';

function tryCommit(repo: Repo, message: string): { code: number | null; stderr: string } {
  const r = spawnSync('git', ['commit', '-q', '-m', message], {
    cwd: repo.dir,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: repo.dir,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'Test',
      GIT_AUTHOR_EMAIL: 'test@example.invalid',
      GIT_COMMITTER_NAME: 'Test',
      GIT_COMMITTER_EMAIL: 'test@example.invalid',
    },
  });
  return { code: r.status, stderr: r.stderr };
}

// Each test builds its own repository and mostly waits on CLI processes: two at a time.
describe('pre-commit hook', { concurrency: 2 }, () => {
  test('the installed pre-commit hook refuses a commit that adds a key and lets a clean one through', async (t) => {
    const repo = tempRepo(t);
    const install = await cli(['hook', 'install'], { cwd: repo.dir });
    assert.equal(install.code, 0, install.stderr);
    assert.match(
      install.stdout,
      /^Installed the pre-commit hook at .*\.git\/hooks\/pre-commit\.\n$/,
    );
    const hook = join(repo.dir, '.git', 'hooks', 'pre-commit');
    assert.equal(statSync(hook).mode & 0o111, 0o111);

    const key = fakeMistralKey();
    repo.write('app.env', `MISTRAL_API_KEY=${key}\n`);
    repo.git('add', 'app.env');
    const refused = tryCommit(repo, 'add key');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /app\.env/);
    assert.ok(!refused.stderr.includes(key));
    assert.equal(
      spawnSync('git', ['rev-parse', '-q', '--verify', 'HEAD'], { cwd: repo.dir }).status,
      1,
    );

    repo.write('app.env', 'MISTRAL_API_KEY=\n');
    repo.git('add', 'app.env');
    assert.equal(tryCommit(repo, 'clean').code, 0);
    const again = await cli(['hook', 'install'], { cwd: repo.dir });
    assert.match(again.stdout, /^Updated the pre-commit hook/);
  });

  test('an existing hook is kept, run first, and restored on uninstall', async (t) => {
    const repo = tempRepo(t);
    const previous = '#!/bin/sh\ntouch "$(git rev-parse --show-toplevel)/ran-before"\n';
    repo.write('.git/hooks/pre-commit', previous);
    spawnSync('chmod', ['+x', join(repo.dir, '.git/hooks/pre-commit')]);
    const install = await cli(['hook', 'install'], { cwd: repo.dir });
    assert.match(install.stdout, /the hook found there runs first/);
    repo.write('readme.md', 'hello\n');
    repo.git('add', 'readme.md');
    assert.equal(tryCommit(repo, 'first').code, 0);
    assert.ok(existsSync(join(repo.dir, 'ran-before')));

    const removed = await cli(['hook', 'uninstall'], { cwd: repo.dir });
    assert.match(removed.stdout, /^Removed the pre-commit hook/);
    assert.equal(readFileSync(join(repo.dir, '.git/hooks/pre-commit'), 'utf8'), previous);
    assert.ok(!existsSync(join(repo.dir, '.git/hooks/pre-commit.before-mistral-guard')));
  });
});
