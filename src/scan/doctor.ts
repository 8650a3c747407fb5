import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/errors.js';
import { type Config, findUpstreamKey, loadConfig, readEnvironment } from '../config/load.js';
import { isLoopbackHost, type Profile } from '../config/schema.js';
import { openSqliteKeyStore } from '../keys/sqlite-store.js';
import { keyStatus } from '../keys/status.js';
import { SQLITE_FILE } from '../store/sqlite.js';
import { compileAllowList } from './allow.js';
import type { ScanSession } from './content.js';
import { hashSecret } from './fingerprint.js';
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

/** The verdict of one checklist item. */
export type ItemStatus = 'pass' | 'warn' | 'fail' | 'skip';

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
  /** Fingerprints already accepted, as in a scan baseline. */
  baseline?: Set<string>;
  /** Virtual keys older than this many days warn (default 90). */
  maxKeyAgeDays?: number;
  now?: Date;
}

const DAY_MS = 86_400_000;

type Item = Omit<DoctorItem, 'id' | 'title'>;

function session(): ScanSession {
  return {
    options: scanRuleOptions(),
    allow: compileAllowList(),
    stats: emptyStats(),
    warn: () => {},
  };
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

async function codeItems(options: DoctorOptions): Promise<Record<string, Item>> {
  const baseline = options.baseline ?? new Set<string>();
  const code = await scanTree({ paths: ['.'], cwd: options.dir }, session());
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
      : secretsItem(await scanHistory({ cwd: options.dir }, session()), baseline, 'history');
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

function served(config: Config): Array<[string, Profile]> {
  return config.environments.map((name) => [name, config.profiles[name]!]);
}

function everyProfile(
  config: Config,
  test: (p: Profile) => boolean,
  pass: string,
  problem: Omit<Item, 'status'> & { status: 'warn' | 'fail' },
): Item {
  const bad = served(config)
    .filter(([, p]) => !test(p))
    .map(([n]) => n);
  if (bad.length === 0) return { status: 'pass', detail: pass };
  return { ...problem, detail: `${problem.detail}: ${bad.join(', ')}` };
}

async function keyItems(config: Config, dir: string): Promise<Record<string, Item>> {
  const env = await readEnvironment(dir);
  const items: Record<string, Item> = {};
  const sources = config.environments.map(
    (name) => [name, findUpstreamKey(name, env).key] as const,
  );
  const none = sources.filter(([, key]) => key === null).map(([n]) => n);
  const fromFile = sources.filter(([, key]) => key && process.env[key.source] === undefined);
  if (none.length > 0) {
    items.keySource = {
      status: 'warn',
      detail: `no upstream key for ${none.join(', ')}`,
      fix: 'set MISTRAL_API_KEY_<ENV> in the environment or from a secret manager',
    };
  } else if (fromFile.length > 0) {
    items.keySource = {
      status: config.environments.includes('production') ? 'fail' : 'warn',
      detail: `upstream key read from ${join(dir, '.env')} for ${fromFile.map(([n]) => n).join(', ')}`,
      fix: 'in production, pass the key through the environment or a secret manager, not a file',
    };
  } else items.keySource = { status: 'pass', detail: 'upstream keys come from the environment' };

  // Every environment with a key of its own, and every served one, must hold a distinct key.
  const names = new Set(config.environments);
  for (const name of Object.keys(config.profiles)) {
    if (env[`MISTRAL_API_KEY_${name.toUpperCase().replace(/-/g, '_')}`]) names.add(name);
  }
  const byKey = new Map<string, string[]>();
  for (const name of names) {
    const key = findUpstreamKey(name, env).key;
    if (!key) continue;
    const hash = hashSecret(key.reveal());
    byKey.set(hash, [...(byKey.get(hash) ?? []), name]);
  }
  const shared = [...byKey.values()].filter((group) => group.length > 1);
  items.distinctKeys =
    shared.length > 0
      ? {
          status: 'fail',
          detail: `one key shared by ${shared.map((g) => g.join(' and ')).join('; ')}`,
          fix: 'give each environment its own key (MISTRAL_API_KEY_PRODUCTION, ..._STAGING)',
        }
      : {
          status: 'pass',
          detail:
            byKey.size < 2
              ? 'one upstream key in use; give each environment its own when you add one'
              : `${byKey.size} environment keys, all distinct`,
        };
  return items;
}

function gatewayItems(config: Config): Record<string, Item> {
  const loopback = isLoopbackHost(config.server.host);
  const noisyLog = config.log.level === 'debug' || config.log.level === 'trace';
  return {
    validation: everyProfile(config, (p) => !p.allowUnknownFields, 'requests are validated', {
      status: 'warn',
      detail: 'unknown request fields allowed',
      fix: 'set allowUnknownFields: false in these profiles',
    }),
    guard: everyProfile(
      config,
      (p) => p.guard.enabled && p.guard.input.categories.secret !== 'allow',
      'the content guard inspects prompts and answers',
      {
        status: 'fail',
        detail: 'content guard off or letting secrets through',
        fix: 'set guard.enabled: true',
      },
    ),
    audit: config.audit.enabled
      ? { status: 'pass', detail: 'every request is audited' }
      : { status: 'fail', detail: 'audit is off', fix: 'set audit.enabled: true' },
    limits: everyProfile(
      config,
      (p) => p.limits.rpm !== null && p.limits.tpm !== null && p.limits.concurrency !== null,
      'request, token and concurrency limits set',
      { status: 'warn', detail: 'a limit is off', fix: 'set limits.rpm, tpm and concurrency' },
    ),
    sanitize: everyProfile(config, (p) => p.guard.sanitize.enabled, 'answers are sanitised', {
      status: 'warn',
      detail: 'output sanitising off',
      fix: 'set guard.sanitize.enabled: true so answers cannot carry links to other hosts',
    }),
    errors: noisyLog
      ? {
          status: 'warn',
          detail: `log level ${config.log.level} records more request detail`,
          fix: 'use log level info in production',
        }
      : { status: 'pass', detail: 'clients see error codes and safe messages only' },
    https: loopback
      ? { status: 'pass', detail: `listens on ${config.server.host}; expose it through HTTPS` }
      : {
          status: 'warn',
          detail: `plain HTTP on ${config.server.host}`,
          fix: 'put an HTTPS reverse proxy (or a trusted TLS terminator) in front of the gateway',
        },
  };
}

async function keyAgeItem(config: Config, options: DoctorOptions): Promise<Item> {
  if (!existsSync(join(config.dataDir, SQLITE_FILE))) {
    return { status: 'skip', detail: 'no key store in the data directory' };
  }
  const store = openSqliteKeyStore(config.dataDir);
  try {
    const now = (options.now ?? new Date()).getTime();
    const maxDays = options.maxKeyAgeDays ?? 90;
    const old = (await store.list())
      .filter((k) => keyStatus(k, now) === 'active')
      .filter((k) => now - Date.parse(k.createdAt) > maxDays * DAY_MS);
    if (old.length === 0)
      return { status: 'pass', detail: `every active key is under ${maxDays} days old` };
    return {
      status: 'warn',
      detail: `${old.length} key(s) older than ${maxDays} days: ${old.map((k) => k.id).join(', ')}`,
      fix: 'issue new keys, move clients over, then revoke the old ones',
    };
  } finally {
    await store.close();
  }
}

const TITLES: Record<string, string> = {
  code: 'No key in the code',
  history: 'No key in the git history',
  gitignore: '.env and key files ignored',
  config: 'Configuration valid',
  keySource: 'Upstream key from the environment',
  distinctKeys: 'A distinct key per environment',
  validation: 'Request validation on',
  guard: 'Content guard on',
  audit: 'Audit on',
  limits: 'Limits on',
  sanitize: 'Output sanitising on',
  errors: 'Errors masked',
  https: 'HTTPS in front',
  keyAge: 'Virtual keys within the rotation period',
};

/**
 * Runs the checklist. Never throws for a finding; throws only for I/O errors outside the
 * project's content (git missing).
 *
 * @example
 * const items = await runDoctor({ dir: process.cwd() });
 * const failed = items.some((i) => i.status === 'fail');
 */
export async function runDoctor(options: DoctorOptions): Promise<DoctorItem[]> {
  const items: Record<string, Item> = await codeItems(options);
  let config: Config | null = null;
  try {
    config = await loadConfig({ configPath: options.configPath, cwd: options.dir });
    items.config = { status: 'pass', detail: config.configFile ?? 'defaults (no file)' };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    items.config = { status: 'fail', detail: error.format(), fix: 'fix the problems listed' };
  }
  if (config) {
    Object.assign(items, await keyItems(config, options.dir), gatewayItems(config));
    items.keyAge = await keyAgeItem(config, options);
  }
  return Object.entries(items).map(([id, item]) => ({ id, title: TITLES[id] ?? id, ...item }));
}
