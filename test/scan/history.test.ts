import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cli, fakeMistralKey, findingsOf, type Repo, tempRepo } from './helpers.js';

const day = (n: number) => `2024-01-${String(n).padStart(2, '0')}T10:00:00+00:00`;

interface Built {
  repo: Repo;
  expected: Record<string, string>;
  sinceRev: string;
}

// One repository holding every case: a key removed three commits after it was added, a file
// since deleted, a branch merged in, a key typed into the merge commit itself, a CRLF file, and
// a branch never merged.
function buildHistory(t: Parameters<typeof tempRepo>[0]): Built {
  const repo = tempRepo(t);
  const k = Array.from({ length: 6 }, fakeMistralKey);
  const expected: Record<string, string> = {};
  const at = (file: string, line: number, col: number, commit: string, date: string) => {
    expected[file] = `${file}:${line}:${col} ${commit} ${date}`;
  };
  repo.write('README.md', '# project\n');
  repo.commit('start', day(1));
  repo.write('config/settings.py', `# settings\nMISTRAL_API_KEY = "${k[0]}"\n`);
  at('config/settings.py', 2, 20, repo.commit('add settings', day(2)), day(2));
  repo.write('other.txt', 'one\n');
  repo.commit('other', day(3));
  repo.write('other.txt', 'two\n');
  repo.commit('other again', day(4));
  repo.write('config/settings.py', '# settings\nMISTRAL_API_KEY = os.environ["MISTRAL_API_KEY"]\n');
  repo.commit('read the key from the environment', day(5));
  repo.write('old/legacy.env', `MISTRAL_API_KEY=${k[1]}\n`);
  at('old/legacy.env', 1, 17, repo.commit('legacy env', day(6)), day(6));
  repo.git('rm', '-q', 'old/legacy.env');
  const sinceRev = repo.commit('drop legacy env', day(7));

  repo.git('checkout', '-q', '-b', 'side');
  repo.write('side.yml', `provider: mistral\napi_key: ${k[2]}\n`);
  at('side.yml', 2, 10, repo.commit('side work', day(8)), day(8));
  repo.git('checkout', '-q', 'main');
  repo.write('README.md', '# project\n\nmore\n');
  repo.commit('main work', day(9));
  repo.git('merge', '-q', '--no-commit', '--no-ff', 'side');
  repo.write('merged.txt', `notes\nmistral key ${k[3]}\n`);
  at('merged.txt', 2, 13, repo.commit('merge side', day(10)), day(10));
  repo.write('win.env', `# windows\r\nMISTRAL_API_KEY=${k[4]}\r\n`);
  at('win.env', 2, 17, repo.commit('crlf file', day(11)), day(11));

  repo.git('checkout', '-q', '-b', 'unmerged', sinceRev);
  repo.write('feature.env', `MISTRAL_API_KEY=${k[5]}\n`);
  at('feature.env', 1, 17, repo.commit('never merged', day(12)), day(12));
  repo.git('checkout', '-q', 'main');
  return { repo, expected, sinceRev };
}

function described(findings: Array<Record<string, unknown>>): string[] {
  return findings.map((f) => `${f.file}:${f.line}:${f.column} ${f.commit} ${f.authorDate}`);
}

// Each test builds its own repository and mostly waits on CLI processes: two at a time.
describe('history scan', { concurrency: 2 }, () => {
  test('history finds removed keys, deleted files, merged branches and merge commits, once each', async (t) => {
    const { repo, expected, sinceRev } = buildHistory(t);
    const head = await cli(['scan', '--history', '--format', 'json'], { cwd: repo.dir });
    assert.equal(head.code, 1, head.stderr);
    const { 'feature.env': unmerged, ...reachable } = expected;
    assert.deepEqual(described(findingsOf(head)), Object.values(reachable).sort());
    assert.match(head.stderr, /\(11 commits\)/);

    const all = await cli(['scan', '--history', '--all', '--format', 'json'], { cwd: repo.dir });
    assert.deepEqual(described(findingsOf(all)), Object.values(expected).sort());
    assert.ok(unmerged);

    const since = await cli(['scan', '--history', '--since', sinceRev, '--format', 'json'], {
      cwd: repo.dir,
    });
    assert.deepEqual(described(findingsOf(since)), [
      expected['merged.txt'],
      expected['side.yml'],
      expected['win.env'],
    ]);
  });

  test('a history finding has the fingerprint of the same value in the working tree', async (t) => {
    const repo = tempRepo(t);
    repo.write('app.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    repo.commit('add');
    const tree = findingsOf(await cli(['scan', '--format', 'json'], { cwd: repo.dir }));
    const history = findingsOf(
      await cli(['scan', '--history', '--format', 'json'], { cwd: repo.dir }),
    );
    assert.equal(history[0]?.fingerprint, tree[0]?.fingerprint);
    assert.equal(history[0]?.source, 'history');
  });

  test('a history scan of a repository without commits finds nothing; a bad --since is a usage error', async (t) => {
    const repo = tempRepo(t);
    const empty = await cli(['scan', '--history'], { cwd: repo.dir });
    assert.equal(empty.code, 0, empty.stderr);
    repo.commit('first');
    const bad = await cli(['scan', '--history', '--since', 'no-such-rev'], { cwd: repo.dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: git log failed/);
  });

  test('history skips binary files unless --include-binary, and locates a key on a 200 KB line', async (t) => {
    const repo = tempRepo(t);
    const [inBinary, inBundle] = [fakeMistralKey(), fakeMistralKey()];
    const before = 'var a=1;'.repeat(25_000);
    repo.write(
      'model.bin',
      Buffer.concat([
        Buffer.from([0, 1, 2, 10]),
        Buffer.from(`\u00ffMISTRAL_API_KEY=${inBinary}\n`, 'latin1'),
      ]),
    );
    repo.write('dist/app.min.js', `${before}var mistral="${inBundle}";${'b=2;'.repeat(10_000)}\n`);
    const commit = repo.commit('add the model and the bundle', day(1));
    const bundle = `dist/app.min.js:1:${before.length + 14} ${commit} ${day(1)}`;

    const plain = await cli(['scan', '--history', '--format', 'json'], { cwd: repo.dir });
    assert.deepEqual(described(findingsOf(plain)), [bundle]);
    const binary = await cli(['scan', '--history', '--include-binary', '--format', 'json'], {
      cwd: repo.dir,
    });
    assert.deepEqual(described(findingsOf(binary)), [bundle, `model.bin:2:18 ${commit} ${day(1)}`]);
  });
});
