import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from './errors.js';
import { configSchema, type ParsedConfig } from './schema.js';
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

async function readConfigFile(
  path: string,
  explicit: boolean,
): Promise<{ data: Plain; problems: ConfigProblem[] } | null> {
  let text: string | null;
  try {
    text = await readOptional(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'read error';
    return {
      data: {},
      problems: [{ path: '', message: `cannot read the file (${code})`, source: path }],
    };
  }
  if (text === null) {
    if (!explicit) return null;
    return { data: {}, problems: [{ path: '', message: 'file not found', source: path }] };
  }
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  // A YAML error message quotes the offending line, which may hold a secret: report its
  // position and kind only.
  const problems = doc.errors.map((e): ConfigProblem => {
    const at = e.linePos?.[0];
    return {
      path: '',
      message: `invalid YAML (${e.code})${at ? ` at line ${at.line}, column ${at.col}` : ''}`,
      source: path,
    };
  });
  if (problems.length) return { data: {}, problems };
  const data = doc.toJS() ?? {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    return {
      data: {},
      problems: [{ path: '', message: 'expected a mapping at the top level', source: path }],
    };
  }
  return { data: data as Plain, problems: [] };
}

function formatPath(path: PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

/** Zod's messages name types and options, never the received value; keep it that way. */
function zodProblems(error: z.ZodError, sources: Map<string, string>, file: string | null) {
  return error.issues.map((issue): ConfigProblem => {
    const path = formatPath(issue.path);
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    const source = sources.get(path) ?? file ?? 'defaults';
    return { path, message, source };
  });
}

/** The upstream key of one environment: `MISTRAL_API_KEY_<ENV>` first, then `MISTRAL_API_KEY`. */
export function findUpstreamKey(
  environment: string,
  env: Record<string, string | undefined>,
): { key: Secret | null; lookedIn: string[] } {
  const specific = `MISTRAL_API_KEY_${environment.toUpperCase().replace(/-/g, '_')}`;
  const lookedIn = [specific, 'MISTRAL_API_KEY'];
  for (const name of lookedIn) {
    const value = env[name]?.trim();
    if (value) return { key: new Secret(value, name), lookedIn };
  }
  return { key: null, lookedIn };
}

/**
 * Loads the configuration. Precedence: flags, environment variables, the YAML file, defaults.
 * Throws ConfigError listing every problem; no message ever contains a value.
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
  const sources = new Map<string, string>();
  const environment = env.MISTRAL_GUARD_ENV || env.NODE_ENV;
  const overrides: Array<[string, string[], unknown]> = [];
  if (environment)
    overrides.push([
      env.MISTRAL_GUARD_ENV ? 'MISTRAL_GUARD_ENV' : 'NODE_ENV',
      ['environment'],
      environment,
    ]);
  for (const [name, path] of ENV_MAP) {
    if (env[name] !== undefined && env[name] !== '') overrides.push([name, path, env[name]]);
  }
  const flags = options.flags ?? {};
  const flagPaths: Array<[keyof ConfigFlags, string, string[]]> = [
    ['environment', '--env', ['environment']],
    ['dataDir', '--data-dir', ['dataDir']],
    ['host', '--host', ['server', 'host']],
    ['port', '--port', ['server', 'port']],
  ];
  for (const [key, flag, path] of flagPaths) {
    if (flags[key] !== undefined) overrides.push([flag, path, flags[key]]);
  }
  for (const [source, path, value] of overrides) {
    setPath(raw, path, value);
    sources.set(path.join('.'), source);
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) problems.push(...zodProblems(parsed.error, sources, file ? filePath : null));
  if (problems.length || !parsed.success) throw new ConfigError(problems);

  const config = parsed.data;
  const upstreamKeys: Record<string, Secret> = {};
  for (const name of config.environments) {
    const { key, lookedIn } = findUpstreamKey(name, env);
    if (key) upstreamKeys[name] = key;
    else if (options.requireUpstreamKey) {
      problems.push({
        path: 'upstream key',
        message: `no upstream Mistral key for environment "${name}": looked in ${lookedIn.join(', ')} (environment and ${resolve(cwd, '.env')})`,
      });
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return {
    ...config,
    dataDir: resolve(cwd, config.dataDir),
    upstreamKeys,
    configFile: file ? filePath : null,
  };
}
