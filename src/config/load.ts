import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { type Document, isMap, isNode, isScalar, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from './errors.js';
import { configSchema, DEFAULT_PROFILES, type ParsedConfig } from './schema.js';
import { Secret } from './secret.js';

/** The resolved configuration: the schema's output plus the upstream key of each environment. */
export type Config = ParsedConfig & {
  /** The real Mistral key per served environment. Absent when the caller did not require it. */
  upstreamKeys: Record<string, Secret>;
  /** The file the configuration came from, if any. */
  configFile: string | null;
};

/** Values given on the command line; they win over everything else. */
export interface ConfigFlags {
  environment?: string | undefined;
  dataDir?: string | undefined;
  host?: string | undefined;
  port?: string | number | undefined;
}

export interface LoadConfigOptions {
  /** A YAML file; otherwise `MISTRAL_GUARD_CONFIG`, then `./mistral-guard.yaml` when present. */
  configPath?: string | undefined;
  flags?: ConfigFlags;
  /** The environment variables; defaults to `process.env` merged over `./.env`. */
  env?: Record<string, string | undefined>;
  /** Where `.env` and `mistral-guard.yaml` are looked for; defaults to the working directory. */
  cwd?: string;
  /** Fail when an environment served has no upstream key (the gateway needs one; the CLI not). */
  requireUpstreamKey?: boolean;
}

type Plain = Record<string, unknown>;

/** Which variable sets which configuration path. */
const ENV_MAP: Array<[string, string[]]> = [
  ['MISTRAL_GUARD_DATA_DIR', ['dataDir']],
  ['MISTRAL_GUARD_HOST', ['server', 'host']],
  ['MISTRAL_GUARD_PORT', ['server', 'port']],
  ['MISTRAL_BASE_URL', ['upstream', 'baseUrl']],
  ['MISTRAL_GUARD_LOG_LEVEL', ['log', 'level']],
  ['MISTRAL_GUARD_REDIS_URL', ['limits', 'redisUrl']],
  ['MISTRAL_GUARD_DATABASE_URL', ['store', 'databaseUrl']],
  ['MISTRAL_GUARD_DATABASE_SCHEMA', ['store', 'schema']],
  ['MISTRAL_GUARD_AUDIT_HMAC_KEY', ['audit', 'hmacKey']],
];

/** Which command-line flag sets which configuration path; a problem names the flag. */
const FLAG_MAP: Array<[keyof ConfigFlags, string, string[]]> = [
  ['environment', '--env', ['environment']],
  ['dataDir', '--data-dir', ['dataDir']],
  ['host', '--host', ['server', 'host']],
  ['port', '--port', ['server', 'port']],
];

function setPath(target: Plain, path: string[], value: unknown): void {
  let node = target;
  for (const part of path.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Plain;
  }
  node[path[path.length - 1]!] = value;
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Reads the environment: real variables win over `.env`, which is optional. */
export async function readEnvironment(cwd: string): Promise<Record<string, string | undefined>> {
  const text = await readOptional(resolve(cwd, '.env'));
  return { ...(text ? parseDotenv(text) : {}), ...process.env };
}

/** A 1-based position in the YAML file. */
interface Position {
  line: number;
  column: number;
}

/** A configuration file that was read: its data, its problems, and where each path sits in it. */
interface ConfigFile {
  path: string;
  data: Plain;
  problems: ConfigProblem[];
  /**
   * The position of the node at `path`, or of its nearest ancestor in the file; with `key`, the
   * position of that key in the mapping at `path` (an unknown field is pointed at by its key).
   */
  locate(path: readonly PropertyKey[], key?: string): Position | undefined;
}

async function readConfigFile(path: string, explicit: boolean): Promise<ConfigFile | null> {
  const failed = (message: string): ConfigFile => ({
    path,
    data: {},
    problems: [{ path: '', message, source: path }],
    locate: () => undefined,
  });
  let text: string | null;
  try {
    text = await readOptional(path);
  } catch (error) {
    return failed(
      `cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'read error'})`,
    );
  }
  if (text === null) return explicit ? failed('file not found') : null;

  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const locate = locator(doc, lines);
  // A YAML error message quotes the offending line, which may hold a secret: report its
  // position and kind only.
  const problems = doc.errors.map((e): ConfigProblem => {
    const { line, col } = lines.linePos(e.pos[0]);
    return { path: '', message: `invalid YAML (${e.code})`, source: path, line, column: col };
  });
  if (problems.length) return { path, data: {}, problems, locate };
  const data: unknown = doc.toJS() ?? {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    const problem = { path: '', message: 'expected a mapping at the top level', source: path };
    return { path, data: {}, problems: [{ ...problem, ...locate([]) }], locate };
  }
  return { path, data: data as Plain, problems: [], locate };
}

function locator(doc: Document, lines: LineCounter): ConfigFile['locate'] {
  const at = (offset: number): Position => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  return (path, key) => {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (!isNode(node) || !node.range) continue;
      if (key !== undefined && n === path.length && isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
        const keyRange = isScalar(pair?.key) ? pair.key.range : undefined;
        if (keyRange) return at(keyRange[0]);
      }
      return at(node.range[0]);
    }
    return undefined;
  };
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

/** Where the values of a configuration came from: overrides by path, then the file. */
interface Origins {
  /** The variable or flag that set a path, e.g. `MISTRAL_GUARD_PORT` or `--port`. */
  overrides: Map<string, string>;
  file: ConfigFile | null;
}

/** Where the value at `path` came from, with its file position when it came from the file. */
function originOf(
  origins: Origins,
  path: readonly PropertyKey[],
  key?: string,
): Pick<ConfigProblem, 'source' | 'line' | 'column'> {
  const override = origins.overrides.get(formatPath(path));
  if (override) return { source: override };
  if (!origins.file) return { source: 'defaults' };
  return { source: origins.file.path, ...origins.file.locate(path, key) };
}

/**
 * The environment each "has no profile" problem is about, in the order the schema reports them
 * (the environment first, then the served list), so a name set by `--env` or
 * `MISTRAL_GUARD_ENV` is blamed on its flag or variable rather than on the file.
 */
function environmentsWithoutProfile(raw: Plain): string[] {
  const profiles = new Set(Object.keys(DEFAULT_PROFILES));
  if (isPlain(raw.profiles)) for (const name of Object.keys(raw.profiles)) profiles.add(name);
  const listed = Array.isArray(raw.environments) ? raw.environments : [];
  return [...new Set([raw.environment, ...listed])].filter(
    (name): name is string => typeof name === 'string' && !profiles.has(name),
  );
}

/** Zod's messages name types and options, never the received value; keep it that way. */
function zodProblems(error: z.ZodError, raw: Plain, origins: Origins): ConfigProblem[] {
  const unprofiled = environmentsWithoutProfile(raw);
  const listed = Array.isArray(raw.environments) ? (raw.environments as unknown[]) : null;
  let profileIssues = 0;
  return error.issues.map((issue): ConfigProblem => {
    let path: PropertyKey[] = issue.path;
    let message = issue.message;
    let key: string | undefined;
    if (issue.code === 'unrecognized_keys') {
      message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      key = issue.keys[0];
    } else if (issue.code === 'custom' && formatPath(path) === 'environments') {
      const name = unprofiled[profileIssues++];
      if (name !== undefined && listed?.includes(name))
        path = ['environments', listed.indexOf(name)];
      else if (name !== undefined && name === raw.environment) path = ['environment'];
    }
    return { path: formatPath(path), message, ...originOf(origins, path, key) };
  });
}

/**
 * The upstream key of one environment: `MISTRAL_API_KEY_<ENV>` first, then `MISTRAL_API_KEY`;
 * or only `variable` when the configuration names one.
 */
export function findUpstreamKey(
  environment: string,
  env: Record<string, string | undefined>,
  variable?: string,
): { key: Secret | null; lookedIn: string[] } {
  const specific = `MISTRAL_API_KEY_${environment.toUpperCase().replace(/-/g, '_')}`;
  const lookedIn = variable ? [variable] : [specific, 'MISTRAL_API_KEY'];
  for (const name of lookedIn) {
    const value = env[name]?.trim();
    if (value) return { key: new Secret(value, name), lookedIn };
  }
  return { key: null, lookedIn };
}

/**
 * The environments a configuration serves, worked out from the raw values even when other parts
 * of it are invalid, so a missing upstream key is reported with the other problems. Null when the
 * names themselves are invalid: those are already reported, and a bad name is never echoed.
 */
function servedEnvironments(raw: Plain): string[] | null {
  const { environment, environments } = raw;
  const names = [environment, ...(Array.isArray(environments) ? environments : [])];
  // Every name gets a stub profile: only the names are checked here, not their profiles.
  const profiles = Object.fromEntries(
    names.filter((n) => typeof n === 'string').map((n) => [n, {}]),
  );
  const parsed = configSchema.safeParse({ environment, environments, profiles });
  return parsed.success ? parsed.data.environments : null;
}

/**
 * How an environment's key is found in the environment: by the variable its configured `env`
 * source names, or by the default lookup. Null when another source (a file, a secret manager)
 * holds it: the upstream key provider reads those at start.
 */
function envLookupOf(raw: Plain, name: string): { variable?: string } | null {
  const section = raw.upstreamKey;
  const source = isPlain(section) && isPlain(section.sources) ? section.sources[name] : undefined;
  if (!isPlain(source)) return {};
  if (source.source !== 'env') return null;
  return typeof source.variable === 'string' ? { variable: source.variable } : {};
}

/**
 * The upstream key of each served environment that reads it from the environment, and a
 * problem for each one without. The environment a variable or flag chose is named with its
 * source, as its other problems are.
 */
function upstreamKeysOf(
  names: string[],
  raw: Plain,
  env: Record<string, string | undefined>,
  chosen: { name: unknown; source: string | undefined },
  dotenvPath: string,
): { keys: Record<string, Secret>; problems: ConfigProblem[] } {
  const keys: Record<string, Secret> = {};
  const problems: ConfigProblem[] = [];
  for (const name of names) {
    const lookup = envLookupOf(raw, name);
    if (lookup === null) continue;
    const { key, lookedIn } = findUpstreamKey(name, env, lookup.variable);
    if (key) {
      keys[name] = key;
      continue;
    }
    const from = name === chosen.name ? chosen.source : undefined;
    problems.push({
      path: 'upstream key',
      message:
        `no upstream Mistral key for environment "${name}"${from ? ` (set by ${from})` : ''}: ` +
        `looked in ${lookedIn.join(', ')} (environment and ${dotenvPath})`,
    });
  }
  return { keys, problems };
}

/** Applies the variables and flags over the file's data and records which one set each path. */
function applyOverrides(
  raw: Plain,
  env: Record<string, string | undefined>,
  flags: ConfigFlags,
): Map<string, string> {
  const environment = env.MISTRAL_GUARD_ENV || env.NODE_ENV;
  const overrides: Array<[string, string[], unknown]> = [];
  if (environment) {
    const name = env.MISTRAL_GUARD_ENV ? 'MISTRAL_GUARD_ENV' : 'NODE_ENV';
    overrides.push([name, ['environment'], environment]);
  }
  for (const [name, path] of ENV_MAP) {
    if (env[name] !== undefined && env[name] !== '') overrides.push([name, path, env[name]]);
  }
  for (const [key, flag, path] of FLAG_MAP) {
    if (flags[key] !== undefined) overrides.push([flag, path, flags[key]]);
  }
  const sources = new Map<string, string>();
  for (const [source, path, value] of overrides) {
    setPath(raw, path, value);
    sources.set(path.join('.'), source);
  }
  return sources;
}

/**
 * Loads the configuration. Precedence: flags, environment variables, the YAML file, defaults.
 * Throws ConfigError listing every problem, each with where its value came from (a variable, a
 * flag, or the file with line and column); no message ever contains a value.
 *
 * @example
 * const config = await loadConfig({ requireUpstreamKey: true });
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<Config> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? (await readEnvironment(cwd));
  const explicitPath = options.configPath ?? env.MISTRAL_GUARD_CONFIG;
  const filePath = resolve(cwd, explicitPath ?? 'mistral-guard.yaml');
  const file = await readConfigFile(filePath, explicitPath !== undefined);
  const problems: ConfigProblem[] = [...(file?.problems ?? [])];

  const raw: Plain = structuredClone(file?.data ?? {});
  const origins: Origins = { overrides: applyOverrides(raw, env, options.flags ?? {}), file };
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) problems.push(...zodProblems(parsed.error, raw, origins));

  // With an unreadable file the environments it serves are unknown: its problems come first.
  const served = parsed.success ? parsed.data.environments : servedEnvironments(raw);
  let upstreamKeys: Record<string, Secret> = {};
  if (served && !file?.problems.length) {
    const chosen = { name: raw.environment, source: origins.overrides.get('environment') };
    const found = upstreamKeysOf(served, raw, env, chosen, resolve(cwd, '.env'));
    upstreamKeys = found.keys;
    if (options.requireUpstreamKey) problems.push(...found.problems);
  }
  if (problems.length || !parsed.success) throw new ConfigError(problems);
  return {
    ...parsed.data,
    dataDir: resolve(cwd, parsed.data.dataDir),
    upstreamKeys,
    configFile: file ? filePath : null,
  };
}

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
