import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { brief, cli, fakeMistralKey, findingsOf, tempRepo } from './helpers.js';

// Each test builds its own repository and mostly waits on CLI processes: two at a time.
describe('staged scan', { concurrency: 2 }, () => {
  test('--staged scans every staged file and reports the key in the second one', async (t) => {
    const repo = tempRepo(t);
    repo.write('a.txt', 'nothing here\n');
    repo.write('b.env', `# b\nDEBUG=1\nMISTRAL_API_KEY=${fakeMistralKey()}\n`);
    repo.git('add', 'a.txt', 'b.env');
    const run = await cli(['scan', '--staged', '--format', 'json'], { cwd: repo.dir });
    assert.equal(run.code, 1, run.stderr);
    assert.deepEqual(brief(findingsOf(run)), ['b.env:3:17 mistral_api_key']);
    assert.equal(findingsOf(run)[0]?.source, 'staged');
    assert.match(run.stderr, /\(2 files\)/);
  });

  test('--staged reads the index, not the working tree, and skips files not staged', async (t) => {
    const repo = tempRepo(t);
    repo.write('kept.txt', 'clean\n');
    repo.commit('start');
    repo.write('staged.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    repo.git('add', 'staged.env');
    // The key is removed from the file on disk after `git add`: the commit would still hold it.
    repo.write('staged.env', 'MISTRAL_API_KEY=\n');
    repo.write('kept.txt', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    const run = await cli(['scan', '--staged', '--format', 'json'], { cwd: repo.dir });
    assert.deepEqual(brief(findingsOf(run)), ['staged.env:1:17 mistral_api_key']);
  });

  test('--staged outside a repository is a usage error', async (t) => {
    const repo = tempRepo(t);
    const run = await cli(['scan', '--staged'], {
      cwd: repo.dir,
      env: { GIT_DIR: '/nonexistent' },
    });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^error: --staged needs a git repository/);
  });

  test('--staged skips a staged binary file unless --include-binary', async (t) => {
    const repo = tempRepo(t);
    const key = fakeMistralKey();
    repo.write(
      'weights.bin',
      Buffer.concat([Buffer.from([0, 10]), Buffer.from(`x MISTRAL_API_KEY=${key}\n`, 'latin1')]),
    );
    repo.git('add', 'weights.bin');
    const skipped = await cli(['scan', '--staged', '--format', 'json'], { cwd: repo.dir });
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.match(skipped.stderr, /1 binary skipped/);
    const included = await cli(['scan', '--staged', '--include-binary', '--format', 'json'], {
      cwd: repo.dir,
    });
    assert.deepEqual(brief(findingsOf(included)), ['weights.bin:2:19 mistral_api_key']);
  });
});
