import { dirname, resolve } from 'node:path';
import { ConfigError } from '../config/errors.js';
import { type Config, loadConfig } from '../config/load.js';
import { type AllowList, compileAllowList } from './allow.js';
import { readBaseline } from './baseline.js';
import type { ScanSession } from './content.js';
import { gatewayItems, type Item, type ItemStatus, keyAgeItem, keyItems } from './doctor-config.js';
import { repoRoot } from './git.js';
import { checkGitignore } from './gitignore.js';
import { scanHistory } from './history.js';
import { scanRuleOptions } from './rules.js';
import { scanTree } from './tree.js';
import { emptyStats, type ScanFinding } from './types.js';

/**
 * The security checklist of a project: secrets in code and history, ignore rules, where the
 * upstream key comes from, and the gateway settings that protect traffic. Each item passes,
 * warns or fails, and says how to fix it.
 */

export type { ItemStatus } from './doctor-config.js';

/** One checklist item. */
export interface DoctorItem {
  id: string;
  title: string;
  status: ItemStatus;
  /** What was found; never a value. */
  detail: string;
  /** What to do, when the item does not pass. */
  fix?: string;
}

/** Options of `runDoctor`. */
export interface DoctorOptions {
  /** The project directory. */
  dir: string;
  /** A configuration file; default `mistral-guard.yaml` in `dir` when present. */
  configPath?: string;
  /** Scan the history too (default true). */
  history?: boolean;
  /** Fingerprints already accepted, as in a scan baseline; default the config's `scan.baseline`. */
  baseline?: Set<string>;
  /** Virtual keys older than this many days warn (default 90). */
  maxKeyAgeDays?: number;
  now?: Date;
}

/** What the code and history items accept, from the `scan` section of the configuration. */
interface Accepted {
  allow: AllowList;
  baseline: Set<string>;
}

function session(allow: AllowList): ScanSession {
  return { options: scanRuleOptions(), allow, stats: emptyStats(), warn: () => {} };
}

function secretsItem(found: ScanFinding[], baseline: Set<string>, where: string): Item {
  const open = found.filter((f) => !baseline.has(f.fingerprint));
  if (open.length === 0) return { status: 'pass', detail: `no secret found in the ${where}` };
  const files = new Set(open.map((f) => f.file)).size;
  const mistral = open.filter((f) => f.rule === 'mistral_api_key').length;
  return {
    status: 'fail',
    detail: `${open.length} secret(s) in ${files} file(s) of the ${where}, ${mistral} Mistral key(s)`,
    fix:
      where === 'history'
        ? 'run `mistral-guard scan --history --verify`, rotate every key found, then rewrite or accept the history'
        : 'run `mistral-guard scan --verify`, move each key to the environment and rotate it',
  };
}

async function codeItems(
  options: DoctorOptions,
  { allow, baseline }: Accepted,
): Promise<Record<string, Item>> {
  const code = await scanTree({ paths: ['.'], cwd: options.dir }, session(allow));
  const items: Record<string, Item> = { code: secretsItem(code, baseline, 'working tree') };
  const inRepo = (await repoRoot(options.dir)) !== null;
  if (!inRepo) {
    items.history = { status: 'skip', detail: 'not a git repository' };
    items.gitignore = { status: 'skip', detail: 'not a git repository' };
    return items;
  }
  items.history =
    options.history === false
      ? { status: 'skip', detail: 'skipped (--no-history)' }
      : secretsItem(await scanHistory({ cwd: options.dir }, session(allow)), baseline, 'history');
  const check = (await checkGitignore(options.dir))!;
  const missing = check.patterns.filter((p) => p.status === 'missing').map((p) => p.pattern);
  const local = check.patterns.filter((p) => p.status === 'local').map((p) => p.pattern);
  items.gitignore =
    missing.length > 0 || check.tracked.length > 0
      ? {
          status: 'fail',
          detail: [
            missing.length > 0 ? `not ignored: ${missing.join(' ')}` : '',
            check.tracked.length > 0 ? `${check.tracked.length} sensitive file(s) tracked` : '',
          ]
            .filter(Boolean)
            .join('; '),
          fix: 'run `mistral-guard check gitignore --fix`, then `git rm --cached` each tracked file',
        }
      : local.length > 0
        ? {
            status: 'warn',
            detail: `ignored only in this clone: ${local.join(' ')}`,
            fix: 'run `mistral-guard check gitignore --fix`',
          }
        : { status: 'pass', detail: '.env, keys and secrets/ are ignored; none is tracked' };
  return items;
}

const TITLES: Record<string, string> = {
  code: 'No key in the code',
  history: 'No key in the git history',
  gitignore: '.env and key files ignored',
  config: 'Configuration valid',
  keySource: 'Keys in env or a secret manager',
  distinctKeys: 'A distinct key per environment',
  validation: 'Request validation on',
  guard: 'Content guard on',
  audit: 'Audit on',
  limits: 'Limits on',
  sanitize: 'Output sanitising on',
  errors: 'Errors masked',
  https: 'HTTPS or a trusted proxy in front',
  keyAge: 'Virtual keys within the rotation period',
};

async function accepted(options: DoctorOptions, config: Config | null): Promise<Accepted> {
  const scan = config?.scan;
  const allow = compileAllowList({ paths: scan?.allowPaths, patterns: scan?.allowPatterns });
  if (options.baseline) return { allow, baseline: options.baseline };
  if (!scan?.baseline) return { allow, baseline: new Set() };
  const from = config?.configFile ? dirname(config.configFile) : options.dir;
  return { allow, baseline: await readBaseline(resolve(from, scan.baseline)) };
}

/**
 * Runs the checklist. Never throws for a finding; throws only for I/O errors outside the
 * project's content (git missing) and for a baseline file that cannot be read.
 *
 * @example
 * const items = await runDoctor({ dir: process.cwd() });
 * const failed = items.some((i) => i.status === 'fail');
 */
export async function runDoctor(options: DoctorOptions): Promise<DoctorItem[]> {
  let config: Config | null = null;
  let configItem: Item;
  try {
    config = await loadConfig({ configPath: options.configPath, cwd: options.dir });
    configItem = { status: 'pass', detail: config.configFile ?? 'defaults (no file)' };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    configItem = { status: 'fail', detail: error.format(), fix: 'fix the problems listed' };
  }
  const items = await codeItems(options, await accepted(options, config));
  items.config = configItem;
  if (config) {
    Object.assign(items, await keyItems(config, options.dir), gatewayItems(config));
    const now = (options.now ?? new Date()).getTime();
    items.keyAge = await keyAgeItem(config, now, options.maxKeyAgeDays ?? 90);
  }
  return Object.entries(items).map(([id, item]) => ({ id, title: TITLES[id] ?? id, ...item }));
}
