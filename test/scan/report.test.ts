import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { formatCsv, formatText } from '../../src/scan/report.js';
import { emptyStats, type ScanFinding } from '../../src/scan/types.js';
import { cli, fakeMistralKey, findingsOf, tempRepo } from './helpers.js';

// The properties SARIF 2.1.0 allows on the objects we write (its schema sets
// additionalProperties to false on each), and the ones it requires.
const SARIF_SHAPES: Record<string, { allowed: string[]; required: string[] }> = {
  log: {
    allowed: ['$schema', 'version', 'runs', 'inlineExternalProperties', 'properties'],
    required: ['version', 'runs'],
  },
  run: {
    allowed: ['tool', 'results', 'columnKind', 'originalUriBaseIds', 'properties'],
    required: ['tool'],
  },
  driver: {
    allowed: ['name', 'semanticVersion', 'version', 'informationUri', 'rules'],
    required: ['name'],
  },
  rule: {
    allowed: [
      'id',
      'name',
      'shortDescription',
      'fullDescription',
      'help',
      'helpUri',
      'defaultConfiguration',
      'properties',
    ],
    required: ['id'],
  },
  result: {
    allowed: [
      'ruleId',
      'ruleIndex',
      'level',
      'message',
      'locations',
      'partialFingerprints',
      'properties',
    ],
    required: ['message'],
  },
  physicalLocation: { allowed: ['artifactLocation', 'region'], required: [] },
  region: { allowed: ['startLine', 'startColumn', 'endLine', 'endColumn'], required: [] },
};

function shape(kind: string, value: Record<string, unknown>): void {
  const { allowed, required } = SARIF_SHAPES[kind]!;
  for (const key of Object.keys(value))
    assert.ok(allowed.includes(key), `${kind}.${key} is not SARIF`);
  for (const key of required) assert.ok(key in value, `${kind}.${key} is required`);
}

function checkSarif(text: string, expectedResults: number): void {
  const log = JSON.parse(text);
  shape('log', log);
  assert.equal(log.version, '2.1.0');
  const [run] = log.runs;
  shape('run', run);
  assert.equal(run.columnKind, 'utf16CodeUnits');
  shape('driver', run.tool.driver);
  const ruleIds = run.tool.driver.rules.map((r: Record<string, unknown>) => r.id);
  for (const rule of run.tool.driver.rules) {
    shape('rule', rule);
    assert.ok(['none', 'note', 'warning', 'error'].includes(rule.defaultConfiguration.level));
    // GitHub reads the score as a string holding a number from 0.0 to 10.0.
    assert.match(rule.properties['security-severity'], /^\d+\.\d$/);
    assert.equal(typeof rule.help.text, 'string');
  }
  assert.equal(run.results.length, expectedResults);
  for (const result of run.results) {
    shape('result', result);
    assert.equal(ruleIds[result.ruleIndex], result.ruleId);
    assert.equal(typeof result.message.text, 'string');
    const physical = result.locations[0].physicalLocation;
    shape('physicalLocation', physical);
    shape('region', physical.region);
    // GitHub needs a path relative to the repository root, as a URI reference.
    assert.ok(!physical.artifactLocation.uri.startsWith('/'));
    assert.doesNotMatch(physical.artifactLocation.uri, /[ #?]/);
    assert.ok(physical.region.startLine >= 1 && physical.region.startColumn >= 1);
    for (const value of Object.values(result.partialFingerprints))
      assert.equal(typeof value, 'string');
  }
}

// Each test builds its own repository and mostly waits on CLI processes: two at a time.
describe('reports and baselines', { concurrency: 2 }, () => {
  test('SARIF output is a valid 2.1.0 log that GitHub code scanning accepts', async (t) => {
    const repo = tempRepo(t);
    repo.write('conf/my settings.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    repo.write('b.txt', `token: ghp_${'aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY2z4C'}\n`);
    const run = await cli(['scan', '--format', 'sarif'], { cwd: repo.dir });
    assert.equal(run.code, 1, run.stderr);
    checkSarif(run.stdout, 2);
    assert.match(run.stdout, /"uri": "conf\/my%20settings\.env"/);
    const empty = await cli(
      ['scan', 'b.txt', '--disable', 'github_token,secret_assignment', '--format', 'sarif'],
      {
        cwd: repo.dir,
      },
    );
    assert.equal(empty.code, 0);
    checkSarif(empty.stdout, 0);
  });

  function finding(over: Partial<ScanFinding>): ScanFinding {
    return {
      rule: 'mistral_api_key',
      category: 'secret',
      severity: 'critical',
      file: 'a.env',
      line: 1,
      column: 17,
      endLine: 1,
      endColumn: 49,
      preview: '****',
      fingerprint: '0123456789abcdef0123456789abcdef',
      source: 'tree',
      ...over,
    };
  }

  test('CSV quotes cells and defuses cells a spreadsheet would run as formulas', () => {
    const csv = formatCsv({
      findings: [finding({ file: '=cmd|x,y.env' }), finding({ file: '-' })],
      stats: emptyStats(),
      version: '0',
    });
    const lines = csv.split('\r\n');
    assert.equal(
      lines[0],
      'rule,category,severity,file,line,column,endLine,endColumn,preview,fingerprint,source,commit,authorDate,verification,encoding',
    );
    assert.match(
      lines[1]!,
      /^mistral_api_key,secret,critical,"'=cmd\|x,y\.env",1,17,1,49,\*\*\*\*,/,
    );
    assert.match(lines[2]!, /,-,1,17,/);
  });

  test('text output groups findings by file, colours only when asked and hides control characters', () => {
    const report = {
      findings: [
        finding({ file: 'x\u001b[2Jy.env' }),
        finding({ line: 4 }),
        finding({ file: 'z' }),
      ],
      stats: emptyStats(),
      version: '0',
    };
    const plain = formatText(report, { color: false });
    assert.equal(plain.includes('\u001b'), false);
    assert.match(plain, /^x\?\[2Jy\.env\n {2}1:17 /);
    assert.match(formatText(report, { color: true }), /\u001b\[31mcritical/);
  });

  test('a baseline accepts known findings and reports only new ones', async (t) => {
    const repo = tempRepo(t);
    repo.write('old.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    const write = await cli(['scan', '--baseline', 'baseline.json', '--update-baseline'], {
      cwd: repo.dir,
    });
    assert.equal(write.code, 0, write.stderr);
    const baseline = JSON.parse(readFileSync(join(repo.dir, 'baseline.json'), 'utf8'));
    assert.deepEqual(Object.keys(baseline), ['version', 'findings']);
    assert.deepEqual(Object.keys(baseline.findings[0]), ['fingerprint', 'rule', 'file']);

    const quiet = await cli(['scan', '--baseline', 'baseline.json'], { cwd: repo.dir });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stderr, /1 in baseline/);
    repo.write('new.env', `MISTRAL_API_KEY=${fakeMistralKey()}\n`);
    const fresh = await cli(['scan', '--baseline', 'baseline.json', '--format', 'json'], {
      cwd: repo.dir,
    });
    assert.equal(fresh.code, 1);
    assert.deepEqual(
      findingsOf(fresh).map((f) => f.file),
      ['new.env'],
    );

    repo.write('broken.json', '{"version": 1, "findings": [{"fingerprint": "nope"}]}');
    for (const file of ['missing.json', 'broken.json']) {
      const bad = await cli(['scan', '--baseline', file], { cwd: repo.dir });
      assert.equal(bad.code, 2, file);
    }
  });

  test('canary: a planted key never appears in any output, format, file or source', async (t) => {
    const repo = tempRepo(t);
    const key = fakeMistralKey();
    const outputs: string[] = [];
    repo.write('history.env', `MISTRAL_API_KEY=${key}\n`);
    repo.commit('add');
    repo.git('rm', '-q', 'history.env');
    repo.commit('remove');
    repo.write('tree.env', `MISTRAL_API_KEY=${key}\n`);
    repo.write(
      'escaped.json',
      `{"mistral": "\\u00${key.charCodeAt(0).toString(16)}${key.slice(1)}"}\n`,
    );
    repo.write('app.log.gz', gzipSync(`INFO using mistral key ${key}\n`));
    repo.git('add', 'tree.env');
    // Every format on the working tree; each other source in one format, all formats covered.
    const runs = [
      ...['text', 'json', 'sarif', 'csv'].map((format) => ['--format', format]),
      ['--staged', '--format', 'text'],
      ['--history', '--format', 'json'],
      ['--logs', 'app.log.gz', '--format', 'sarif'],
      ['-', '--format', 'csv'],
    ];
    for (const args of runs) {
      const run = await cli(['scan', ...args], {
        cwd: repo.dir,
        input: `mistral ${key}\n`,
        outputs,
      });
      assert.equal(run.code, 1, `${args.join(' ')}: ${run.stderr}`);
    }
    await cli(['scan', '--baseline', 'baseline.json', '--update-baseline'], {
      cwd: repo.dir,
      outputs,
    });
    await cli(['scan', '--format', 'sarif', '--output', 'out.sarif'], { cwd: repo.dir, outputs });
    outputs.push(readFileSync(join(repo.dir, 'baseline.json'), 'utf8'));
    outputs.push(readFileSync(join(repo.dir, 'out.sarif'), 'utf8'));
    assert.equal(outputs.length, 22);
    // Not the key, nor a recognisable part of it.
    for (const part of [key, key.slice(0, 10), key.slice(11, 21), key.slice(-10)]) {
      assert.ok(!outputs.some((o) => o.includes(part)), 'the key leaked into an output');
    }
  });
});
