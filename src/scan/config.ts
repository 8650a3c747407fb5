import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type Document, isNode, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../config/errors.js';
import type { ScanConfig } from '../config/schema.js';
import { repoRoot } from './git.js';

/**
 * The `scan` section of the configuration file, read on its own: a scan in a pre-commit hook or
 * in CI must not fail on a gateway setting, or on a `NODE_ENV` that names no gateway profile.
 * The file is `--config`, else `MISTRAL_GUARD_CONFIG`, else `mistral-guard.yaml` in the working
 * directory, else at the root of the repository holding it (paths in `allowPaths` are from
 * that root, as scan reports them).
 */

const FILE_NAME = 'mistral-guard.yaml';

/** The scan settings in force, and where they came from. */
export interface ScanSettings extends ScanConfig {
  /** The configuration file read, or null when there is none. */
  file: string | null;
}

/** Where to look for the configuration file. */
export interface ScanSettingsOptions {
  cwd: string;
  /** An explicit file; missing is then an error. */
  configPath?: string | undefined;
  env?: Record<string, string | undefined>;
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new ConfigError([{ path: '', message: `cannot read the file (${code})`, source: path }]);
  }
}

async function findFile(options: ScanSettingsOptions): Promise<[string, string] | null> {
  const explicit = options.configPath ?? (options.env ?? process.env).MISTRAL_GUARD_CONFIG;
  if (explicit !== undefined) {
    const path = resolve(options.cwd, explicit);
    const text = await readOptional(path);
    if (text === null)
      throw new ConfigError([{ path: '', message: 'file not found', source: path }]);
    return [path, text];
  }
  const here = resolve(options.cwd, FILE_NAME);
  const text = await readOptional(here);
  if (text !== null) return [here, text];
  const root = await repoRoot(options.cwd);
  if (root === null) return null;
  const atRoot = resolve(root, FILE_NAME);
  const rootText = atRoot === here ? null : await readOptional(atRoot);
  return rootText === null ? null : [atRoot, rootText];
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
}

type Place = { line: number; column: number };

// Each problem points at the value at fault, or at its nearest ancestor present in the file.
function problemsOf(
  issues: z.core.$ZodIssue[],
  doc: Document,
  source: string,
  at: (offset: number) => Place,
): ConfigProblem[] {
  return issues.map((issue) => {
    const nodePath = ['scan', ...issue.path];
    let node: unknown;
    for (let n = nodePath.length; n > 0 && !isNode(node); n--) {
      node = doc.getIn(nodePath.slice(0, n), true);
    }
    const range = isNode(node) ? node.range : undefined;
    const message =
      issue.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : issue.message;
    return {
      path: `scan${formatPath(issue.path)}`,
      message,
      source,
      ...(range ? at(range[0]) : {}),
    };
  });
}

/**
 * Reads the scan settings. Throws ConfigError, with the file position of each problem and never
 * a value, when the file is not valid YAML or its `scan` section does not fit the schema.
 *
 * @example
 * const settings = await readScanSettings({ cwd: process.cwd() });
 * compileAllowList({ paths: settings.allowPaths, patterns: settings.allowPatterns });
 */
export async function readScanSettings(options: ScanSettingsOptions): Promise<ScanSettings> {
  const found = await findFile(options);
  if (!found) return { allowPaths: [], allowPatterns: [], file: null };
  const [path, text] = found;
  // Loaded only when there is a file to check: most scans have none, and zod takes a while.
  const { scanSchema } = await import('../config/schema.js');

  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): Place => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  if (doc.errors.length > 0) {
    // A YAML error message quotes the line at fault, which may hold a value: only its kind.
    throw new ConfigError(
      doc.errors.map((e) => ({
        path: '',
        message: `invalid YAML (${e.code})`,
        source: path,
        ...at(e.pos[0]),
      })),
    );
  }
  const data = doc.toJS() as { scan?: unknown } | null;
  const parsed = scanSchema.safeParse(typeof data === 'object' ? data?.scan : undefined);
  if (!parsed.success) throw new ConfigError(problemsOf(parsed.error.issues, doc, path, at));

  const settings: ScanSettings = { ...parsed.data, file: path };
  if (settings.baseline !== undefined) {
    settings.baseline = resolve(dirname(path), settings.baseline);
  }
  return settings;
}
