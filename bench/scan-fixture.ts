// Builds the leak scanner's benchmark repository: a working tree of a few thousand source,
// config, docs and minified files, and a history of thousands of commits written through
// `git fast-import`, with fake keys planted at known places. Some keys are removed a few commits
// after they were added, some sit in files deleted later, some come in through merged branches.
// Every key is random and fake; nothing is ever sent anywhere.
// Run on its own: node --import tsx bench/scan-fixture.ts DIR [COMMITS]
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  BASE62,
  fillerLine,
  type Gen,
  generator,
  KINDS,
  type Kind,
  keyLines,
  minified,
  WORDS,
} from './scan-text.js';

export { KINDS, type Kind } from './scan-text.js';

/** One planted key and where it went in. */
export interface Plant {
  kind: Kind;
  /** A substring unique to this key, found on the key's first line. */
  needle: string;
  file: string;
  /** Where the key was added: 1-based line and column in that commit's version of the file. */
  line: number;
  column: number;
  /** The fast-import mark of the commit that added it; its id is in `Fixture.commitIds`. */
  mark: number;
  /** Still in the file at the head commit. */
  alive: boolean;
}

/** What was built. */
export interface Fixture {
  dir: string;
  /** Commits reachable from `main`. */
  commits: number;
  /** Commit id of each fast-import mark. */
  commitIds: Map<number, string>;
  plants: Plant[];
  /** Keys in the checked-out tree, with their place at the head commit. */
  treePlants: Array<Plant & { headLine: number; headColumn: number }>;
  /** `main` after this many commits, for scans of a growing history. */
  checkpoints: Map<number, string>;
  files: number;
  treeBytes: number;
}

/** Sizes of a fixture. */
export interface FixtureOptions {
  commits?: number;
  files?: number;
  checkpoints?: number[];
  seed?: number;
}

const EXTS = ['ts', 'ts', 'ts', 'py', 'md', 'yaml', 'json'] as const;

/** Where a key sits in the current lines of its file. */
function placeOf(files: Map<string, string[]>, plant: Plant): { line: number; column: number } {
  const lines = files.get(plant.file)!;
  const at = lines.findIndex((l) => l.includes(plant.needle));
  // A PEM block starts on the line above its needle, at the first column.
  if (plant.kind === 'pem_private_key') return { line: at, column: 1 };
  return { line: at + 1, column: lines[at]!.indexOf(plant.needle) + 1 };
}

/** Lines of every file, with the fast-import stream built as the history goes. */
class Builder {
  readonly files = new Map<string, string[]>();
  readonly plants: Plant[] = [];
  readonly checkpoints = new Map<number, number>();
  mark = 0;
  #fd: number;
  #time = Date.UTC(2023, 0, 1) / 1000;
  #fileNo = 0;

  constructor(
    readonly g: Gen,
    streamPath: string,
  ) {
    this.#fd = openSync(streamPath, 'w');
  }

  newFile(): string {
    const ext = this.g.pick(EXTS);
    const dir = this.g.pick(['src', 'src/api', 'src/jobs', 'lib', 'docs', 'config', 'scripts']);
    const name = `${dir}/${this.g.pick(WORDS)}-${++this.#fileNo}.${ext}`;
    const count = 20 + this.g.int(ext === 'md' ? 150 : 350);
    this.files.set(
      name,
      Array.from({ length: count }, () => fillerLine(this.g, ext)),
    );
    return name;
  }

  /** Puts a key in `file`; its place is taken when the next commit is written. */
  plant(file: string, kind: Kind = this.g.pick(KINDS)): void {
    const lines = this.files.get(file)!;
    const k = keyLines(this.g, kind);
    lines.splice(this.#safeIndex(lines), 0, ...k.lines);
    this.plants.push({
      kind,
      needle: k.needle,
      file,
      line: 0,
      column: 0,
      mark: this.mark + 1,
      alive: true,
    });
  }

  // An insertion point outside any PEM block, so a block always stays whole.
  #safeIndex(lines: string[]): number {
    const index = this.g.int(lines.length + 1);
    const before = lines[index - 1] ?? '';
    return before.startsWith('-----BEGIN') || /^[A-Za-z0-9+/]{40,}$/.test(before) ? 0 : index;
  }

  unplant(plant: Plant): void {
    const lines = this.files.get(plant.file);
    if (!lines || !plant.alive) return;
    const at = lines.findIndex((l) => l.includes(plant.needle));
    const pem = plant.kind === 'pem_private_key';
    lines.splice(pem ? at - 1 : at, pem ? 10 : 1);
    plant.alive = false;
  }

  edit(file: string): void {
    const lines = this.files.get(file)!;
    const ext = file.slice(file.lastIndexOf('.') + 1);
    const index = this.#safeIndex(lines);
    lines.splice(
      index,
      0,
      ...Array.from({ length: 1 + this.g.int(5) }, () => fillerLine(this.g, ext)),
    );
  }

  remove(file: string): void {
    this.files.delete(file);
    for (const p of this.plants) if (p.file === file) p.alive = false;
  }

  /** Writes a commit of `changed` paths (deleted when no longer in `files`) on `ref`. */
  commit(ref: string, message: string, changed: Iterable<string>, from?: number, merge?: number) {
    const mark = ++this.mark;
    this.#time += 600;
    const when = `${this.#time} +0000`;
    const out = [
      `commit ${ref}\nmark :${mark}\nauthor Bench <bench@example.invalid> ${when}\n`,
      `committer Bench <bench@example.invalid> ${when}\n${data(message)}`,
      from ? `from :${from}\n` : '',
      merge ? `merge :${merge}\n` : '',
    ];
    for (const path of changed) {
      const lines = this.files.get(path);
      out.push(lines ? `M 100644 inline ${path}\n${data(`${lines.join('\n')}\n`)}` : `D ${path}\n`);
    }
    writeSync(this.#fd, `${out.join('')}\n`);
    // Keys added by this commit are placed once all its changes are in.
    for (const p of this.plants) if (p.mark === mark) Object.assign(p, placeOf(this.files, p));
    return mark;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

function data(text: string): string {
  return `data ${Buffer.byteLength(text)}\n${text}\n`;
}

function git(dir: string, args: string[], input?: number): string {
  const r = spawnSync('git', args, {
    cwd: dir,
    encoding: 'utf8',
    stdio: [input ?? 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: dir },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`git ${args[0]}: ${r.stderr}`);
  return r.stdout;
}

// One step of history on main: mostly edits and new files, now and then a planted key, a key
// removed a few commits after it was added, a deleted file or a merged side branch.
function step(b: Builder, main: { tip: number }, removals: Array<[number, Plant]>): void {
  const { g } = b;
  if (b.mark % 250 === 0) {
    const feature = b.newFile();
    b.commit('refs/heads/side', 'start feature', [feature], main.tip);
    b.plant(feature);
    b.commit('refs/heads/side', 'feature settings', [feature]);
    b.edit(feature);
    const side = b.commit('refs/heads/side', 'tidy feature', [feature]);
    main.tip = b.commit('refs/heads/main', 'merge feature', [feature], main.tip, side);
    return;
  }
  const editable = [...b.files.keys()].filter((n) => !n.endsWith('.min.js'));
  const file = g.pick(editable);
  const roll = g.rand();
  const changed = new Set<string>();
  if (roll < 0.025) {
    b.plant(file);
    // Two in five keys are taken out again, between one and twenty commits later.
    if (g.rand() < 0.4) removals.push([b.mark + 2 + g.int(20), b.plants.at(-1)!]);
    changed.add(file);
  } else if (roll < 0.12) changed.add(b.newFile());
  else if (roll < 0.135 && editable.length > 100) {
    b.remove(file);
    changed.add(file);
  } else {
    b.edit(file);
    changed.add(file);
  }
  for (let i = removals.length - 1; i >= 0; i--) {
    const [when, plant] = removals[i]!;
    if (when > b.mark + 1) continue;
    removals.splice(i, 1);
    if (!plant.alive) continue;
    b.unplant(plant);
    changed.add(plant.file);
  }
  main.tip = b.commit('refs/heads/main', `change ${b.mark + 1}`, changed);
}

/**
 * Builds the fixture in `dir` (created if needed) and checks out the head commit.
 *
 * @example
 * const fixture = buildScanFixture('/tmp/scan-bench', { commits: 5000 });
 */
export function buildScanFixture(dir: string, options: FixtureOptions = {}): Fixture {
  const commits = options.commits ?? 5000;
  const checkpointsAt = options.checkpoints ?? [];
  const g = generator(options.seed ?? 7);
  mkdirSync(dir, { recursive: true });
  git(dir, ['init', '-q', '-b', 'main']);
  const streamPath = join(dir, '..', `${dir.split('/').pop()}.fast-import`);
  const b = new Builder(g, streamPath);

  for (let i = 0; i < (options.files ?? 2000); i++) b.newFile();
  for (let i = 0; i < 4; i++) {
    b.files.set(`dist/bundle-${i}.min.js`, [minified(g, 200_000 + g.int(200_000))]);
  }
  const names = [...b.files.keys()];
  for (const kind of KINDS)
    for (let i = 0; i < 6; i++) b.plant(g.pick(names.filter((n) => !n.endsWith('.min.js'))), kind);
  // One key in the middle of a minified line, at a column past 100,000.
  const bundle = b.files.get('dist/bundle-0.min.js')!;
  const cut = bundle[0]!.indexOf(';', 100_000) + 1;
  const key = g.mixed(BASE62, 32);
  bundle[0] = `${bundle[0]!.slice(0, cut)}var mistral="${key}";${bundle[0]!.slice(cut)}`;
  b.plants.push({
    kind: 'mistral_api_key',
    needle: key,
    file: 'dist/bundle-0.min.js',
    line: 1,
    column: cut + 14,
    mark: 1,
    alive: true,
  });
  const main = { tip: b.commit('refs/heads/main', 'import', b.files.keys()) };

  const removals: Array<[number, Plant]> = [];
  const checkpoints = new Map<number, number>();
  for (const at of checkpointsAt) if (at <= 1) checkpoints.set(at, main.tip);
  while (b.mark < commits) {
    step(b, main, removals);
    for (const at of checkpointsAt)
      if (!checkpoints.has(at) && b.mark >= at) checkpoints.set(at, main.tip);
  }
  b.close();

  const input = openSync(streamPath, 'r');
  try {
    git(dir, ['fast-import', '--quiet', `--export-marks=${streamPath}.marks`], input);
  } finally {
    closeSync(input);
  }
  git(dir, ['update-ref', '-d', 'refs/heads/side']);
  git(dir, ['checkout', '-q', '-f', 'main']);
  const commitIds = new Map<number, string>();
  for (const line of readFileSync(`${streamPath}.marks`, 'utf8').trim().split('\n')) {
    const [mark, id] = line.split(' ');
    commitIds.set(Number(mark!.slice(1)), id!);
  }
  const treePlants = b.plants
    .filter((p) => p.alive)
    .map((p) => {
      const head = placeOf(b.files, p);
      return { ...p, headLine: head.line, headColumn: head.column };
    });
  let treeBytes = 0;
  for (const lines of b.files.values()) for (const l of lines) treeBytes += l.length + 1;
  return {
    dir,
    commits: Number(git(dir, ['rev-list', '--count', 'main']).trim()),
    commitIds,
    plants: b.plants,
    treePlants,
    checkpoints: new Map([...checkpoints].map(([at, mark]) => [at, commitIds.get(mark)!])),
    files: b.files.size,
    treeBytes,
  };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename ?? '')) {
  const dir = resolve(process.argv[2] ?? 'scan-fixture');
  const started = performance.now();
  const f = buildScanFixture(dir, { commits: Number(process.argv[3] ?? 5000) });
  process.stdout.write(
    `${dir}: ${f.commits} commits, ${f.files} files (${(f.treeBytes / 1e6).toFixed(1)} MB), ${f.plants.length} keys planted, ${f.treePlants.length} in the tree, in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
}
