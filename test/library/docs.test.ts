/**
 * Every TypeScript example of the README's library section runs, as a program of its own,
 * against the loopback Mistral server: a broken example fails here before a reader copies it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { canaryUpstreamKey } from '../support/canary.js';
import { type MockMistral, startMockMistral } from '../support/mock-mistral.js';
import { ROOT, TSX } from '../support/processes.js';

const README = join(ROOT, 'README.md');
const PACKAGE_ENTRY = pathToFileURL(join(ROOT, 'src', 'index.ts')).href;
const UPSTREAM_KEY = canaryUpstreamKey();

/** The ```ts blocks of a markdown text, with the line each starts on. */
function examples(markdown: string): Array<{ line: number; code: string }> {
  const out: Array<{ line: number; code: string }> = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```ts') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== '```') end++;
    out.push({ line: start + 1, code: lines.slice(start, end).join('\n') });
    i = end;
  }
  return out;
}

/**
 * The example as a file that runs from a temporary directory: the package name points at the
 * sources, other packages at this repository's dependencies.
 */
function runnable(code: string): string {
  return code.replace(/from '([^']+)'/g, (whole, specifier: string) => {
    if (specifier === 'mistral-guard') return `from '${PACKAGE_ENTRY}'`;
    if (specifier.startsWith('node:') || specifier.startsWith('.')) return whole;
    return `from '${import.meta.resolve(specifier)}'`;
  });
}

function run(file: string, cwd: string, env: Record<string, string>) {
  const proc = spawn(process.execPath, ['--import', TSX, file], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (d) => {
    output += d;
  });
  proc.stderr.on('data', (d) => {
    output += d;
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  return new Promise<{ code: number | null; output: string }>((resolve) =>
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

let mock: MockMistral;

before(async () => {
  mock = await startMockMistral({ validKeys: [UPSTREAM_KEY] });
});

after(async () => {
  await mock?.close();
});

/** The README's `## Library` section, up to the next top-level section. */
function librarySection(markdown: string): { text: string; firstLine: number } {
  const start = markdown.indexOf('\n## Library\n');
  assert.ok(start >= 0, 'the README has no Library section');
  const end = markdown.indexOf('\n## ', start + 1);
  const firstLine = markdown.slice(0, start).split('\n').length;
  return { text: markdown.slice(start, end === -1 ? undefined : end), firstLine };
}

describe('README library section', () => {
  const section = librarySection(readFileSync(README, 'utf8'));
  const blocks = examples(section.text).map((b) => ({
    ...b,
    line: b.line + section.firstLine - 1,
  }));

  test('has an example for each export it documents', () => {
    const all = blocks.map((b) => b.code).join('\n');
    for (const name of [
      'loadConfig',
      'validateChatRequest',
      'createGuardedClient',
      'withContext',
      'mistralGuardFastify',
      'mistralGuardExpress',
      'guardedRequestOf',
      'toSdkRequest',
      'openAuditLog',
    ]) {
      assert.match(all, new RegExp(`\\b${name}\\b`), `no example uses ${name}`);
    }
  });

  for (const block of blocks) {
    test(`the example at line ${block.line} runs`, async () => {
      // Each example gets an empty working directory: no stray configuration or .env is read.
      const dir = await mkdtemp(join(tmpdir(), 'mg-docs-'));
      const file = join(dir, 'example.mts');
      await writeFile(file, runnable(block.code));
      const result = await run(file, dir, {
        MISTRAL_API_KEY: UPSTREAM_KEY,
        MISTRAL_BASE_URL: mock.url,
      });
      assert.equal(result.code, 0, result.output);
      assert.ok(!result.output.includes(UPSTREAM_KEY), 'an example printed the upstream key');
    });
  }
});
