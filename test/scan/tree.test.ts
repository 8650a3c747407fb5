import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { brief, cli, fakeMistralKey, findingsOf, scratch, tempRepo } from './helpers.js';

// Each test builds its own repository and mostly waits on CLI processes: two at a time.
describe('working-tree scan', { concurrency: 2 }, () => {
  test('a working-tree scan honours .gitignore, and --no-ignore or naming the file includes it', async (t) => {
    const repo = tempRepo(t);
    const [k1, k2, k3] = [fakeMistralKey(), fakeMistralKey(), fakeMistralKey()];
    repo.write('.gitignore', 'ignored/\n');
    repo.write('src/config.ts', `// settings\nconst mistralKey = "${k1}";\n`);
    repo.write('ignored/.env', `MISTRAL_API_KEY=${k2}\n`);
    repo.commit('start');
    repo.write('notes.txt', `mistral: ${k3}\n`);

    const plain = await cli(['scan', '--format', 'json'], { cwd: repo.dir });
    assert.equal(plain.code, 1, plain.stderr);
    assert.deepEqual(brief(findingsOf(plain)), [
      'notes.txt:1:10 mistral_api_key',
      'src/config.ts:2:21 mistral_api_key',
    ]);
    const all = await cli(['scan', '--no-ignore', '--format', 'json'], { cwd: repo.dir });
    assert.deepEqual(brief(findingsOf(all)), [
      'ignored/.env:1:17 mistral_api_key',
      'notes.txt:1:10 mistral_api_key',
      'src/config.ts:2:21 mistral_api_key',
    ]);
    const named = await cli(['scan', 'ignored/.env', '--format', 'json'], { cwd: repo.dir });
    assert.deepEqual(brief(findingsOf(named)), ['ignored/.env:1:17 mistral_api_key']);
  });

  test('paths are reported from the repository root when the scan starts in a subdirectory', async (t) => {
    const repo = tempRepo(t);
    repo.write('app/sub/settings.py', `MISTRAL_API_KEY = "${fakeMistralKey()}"\n`);
    repo.write('other/x.py', `MISTRAL_API_KEY = "${fakeMistralKey()}"\n`);
    repo.commit('start');
    const run = await cli(['scan', '.', '--format', 'json'], { cwd: join(repo.dir, 'app') });
    assert.deepEqual(brief(findingsOf(run)), ['app/sub/settings.py:1:20 mistral_api_key']);
  });

  test('binary files are skipped unless --include-binary, which finds the key by line and byte', async (t) => {
    const repo = tempRepo(t);
    const key = fakeMistralKey();
    repo.write(
      'model.bin',
      Buffer.concat([
        Buffer.from([0, 1, 2, 10]),
        Buffer.from(`\u00ffMISTRAL_API_KEY=${key}\n`, 'latin1'),
      ]),
    );
    const skipped = await cli(['scan', '--format', 'json'], { cwd: repo.dir });
    assert.equal(skipped.code, 0);
    assert.deepEqual(findingsOf(skipped), []);
    assert.match(skipped.stderr, /1 binary skipped/);
    const included = await cli(['scan', '--include-binary', '--format', 'json'], { cwd: repo.dir });
    assert.deepEqual(brief(findingsOf(included)), ['model.bin:2:18 mistral_api_key']);
  });

  test('a key on a 200 KB minified line is found at its exact column', async (t) => {
    const repo = tempRepo(t);
    const key = fakeMistralKey();
    const before = 'var a=1;'.repeat(25_000);
    repo.write('dist/app.min.js', `${before}var mistral="${key}";${'b=2;'.repeat(10_000)}\n`);
    const run = await cli(['scan', '--format', 'json'], { cwd: repo.dir });
    const [f] = findingsOf(run);
    assert.deepEqual(
      { line: f?.line, column: f?.column, endColumn: f?.endColumn },
      { line: 1, column: before.length + 14, endColumn: before.length + 46 },
    );
  });

  test('CRLF files, JSON escapes, URL encoding and a flattened PEM block are located exactly', async (t) => {
    const repo = tempRepo(t);
    const [crlf, json, url] = [fakeMistralKey(), fakeMistralKey(), fakeMistralKey()];
    const pemBody = `${Buffer.alloc(96, 7).toString('base64').replace(/B/g, 'x')}Zq9`;
    repo.write('crlf.env', `# one\r\n# two\r\nMISTRAL_API_KEY=${crlf}\r\nNEXT=1\r\n`);
    const escaped = `\\u00${json.charCodeAt(0).toString(16)}${json.slice(1)}`;
    repo.write('settings.json', `{\n  "mistral": {\n    "apiKey": "${escaped}"\n  }\n}\n`);
    const encoded = `%${url.charCodeAt(0).toString(16).toUpperCase()}${url.slice(1)}`;
    repo.write('links.md', `See https://example.invalid/cb?mistral_key=${encoded}&x=1\n`);
    const pem = `-----BEGIN PRIVATE KEY----- ${pemBody} -----END PRIVATE KEY-----`;
    repo.write('deploy.txt', `first line\n    ${pem}\n`);
    const run = await cli(['scan', '--format', 'json'], { cwd: repo.dir });
    const found = findingsOf(run).map(
      (f) => `${f.file}:${f.line}:${f.column}-${f.endLine}:${f.endColumn} ${f.rule}`,
    );
    assert.deepEqual(found, [
      'crlf.env:3:17-3:49 mistral_api_key',
      `deploy.txt:2:5-2:${5 + pem.length} pem_private_key`,
      `links.md:1:44-1:${44 + 34} mistral_api_key`,
      'settings.json:3:16-3:53 mistral_api_key',
    ]);
  });

  test('an inline mistral-guard:allow comment accepts the finding on its line', async (t) => {
    const repo = tempRepo(t);
    repo.write('a.env', `MISTRAL_API_KEY=${fakeMistralKey()} # mistral-guard:allow\n`);
    repo.write('b.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    const run = await cli(['scan', '--format', 'json'], { cwd: repo.dir });
    assert.deepEqual(brief(findingsOf(run)), ['b.env:1:17 mistral_api_key']);
    assert.match(run.stderr, /1 allowed inline/);
  });

  test('--allow-path and --allow-pattern accept fixtures and documented values', async (t) => {
    const repo = tempRepo(t);
    const key = fakeMistralKey();
    repo.write('test/fixtures/keys.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    repo.write('docs/setup.md', `MISTRAL_API_KEY=${key}\n`);
    repo.write('src/a.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    const run = await cli(
      [
        'scan',
        '--allow-path',
        'test/fixtures/',
        '--allow-pattern',
        `^${key.slice(0, 8)}`,
        '--format',
        'json',
      ],
      { cwd: repo.dir },
    );
    assert.deepEqual(brief(findingsOf(run)), ['src/a.env:1:17 mistral_api_key']);
  });

  test('outside a repository every file is walked, .gitignore or not', async (t) => {
    const dir = scratch(t);
    mkdirSync(join(dir, 'conf'));
    writeFileSync(join(dir, '.gitignore'), 'conf/\n');
    writeFileSync(join(dir, 'conf', 'prod.env'), `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    const run = await cli(['scan', '--format', 'json'], { cwd: dir });
    assert.deepEqual(brief(findingsOf(run)), ['conf/prod.env:1:17 mistral_api_key']);
  });

  test('- reads standard input, plain or gzip-compressed', async (t) => {
    const dir = scratch(t);
    const text = `line one\nMISTRAL_API_KEY=${fakeMistralKey()}\n`;
    for (const input of [text, gzipSync(text)]) {
      const run = await cli(['scan', '-', '--format', 'json'], { cwd: dir, input });
      assert.deepEqual(brief(findingsOf(run)), ['-:2:17 mistral_api_key']);
    }
  });

  test('the fingerprint stays the same when lines move and changes with the value', async (t) => {
    const repo = tempRepo(t);
    const key = fakeMistralKey();
    repo.write('app.env', `MISTRAL_API_KEY=${key}\n`);
    const first = findingsOf(await cli(['scan', '--format', 'json'], { cwd: repo.dir }));
    repo.write('app.env', `# added\n# lines\nMISTRAL_API_KEY=${key}\n`);
    const moved = findingsOf(await cli(['scan', '--format', 'json'], { cwd: repo.dir }));
    repo.write('app.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    const changed = findingsOf(await cli(['scan', '--format', 'json'], { cwd: repo.dir }));
    assert.equal(moved[0]?.line, 3);
    assert.equal(moved[0]?.fingerprint, first[0]?.fingerprint);
    assert.notEqual(changed[0]?.fingerprint, first[0]?.fingerprint);
    assert.match(String(first[0]?.fingerprint), /^[0-9a-f]{32}$/);
  });

  test('exit codes: 0 when clean, 2 for a missing path or bad flags', async (t) => {
    const repo = tempRepo(t);
    repo.write('README.md', 'nothing to see\n');
    const clean = await cli(['scan'], { cwd: repo.dir });
    assert.equal(clean.code, 0);
    assert.equal(clean.stdout, '');
    assert.match(clean.stderr, /No secrets found \(1 file\)/);
    for (const args of [
      ['scan', 'missing-dir'],
      ['scan', '--format', 'xml'],
      ['scan', '--since', 'HEAD'],
      ['scan', '--staged', '--history'],
      ['scan', '--update-baseline'],
      ['scan', '--disable', 'no_such_rule'],
    ]) {
      const run = await cli(args, { cwd: repo.dir });
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^error: /);
    }
  });
});
