import { existsSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { type Config, findUpstreamKey, readEnvironment } from '../config/load.js';
import { isLoopbackHost, type KeySourceConfig, type Profile } from '../config/schema.js';
import { openSqliteKeyStore } from '../keys/sqlite-store.js';
import { keyStatus } from '../keys/status.js';
import { SQLITE_FILE } from '../store/sqlite.js';
import { hashSecret } from './fingerprint.js';

/**
 * The checklist items read from a gateway configuration: where each upstream key comes from,
 * whether environments share one, the settings that protect traffic, and the age of virtual
 * keys. Each item passes, warns or fails, and says how to fix it.
 */

/** The verdict of one checklist item. */
export type ItemStatus = 'pass' | 'warn' | 'fail' | 'skip';

/** One item before it gets its id and title. */
export interface Item {
  status: ItemStatus;
  /** What was found; never a value. */
  detail: string;
  /** What to do, when the item does not pass. */
  fix?: string;
}

const DAY_MS = 86_400_000;
const MANAGERS = { aws: 'AWS Secrets Manager', gcp: 'GCP Secret Manager', vault: 'Vault' };

/** Where one environment's upstream key comes from, and what identifies the key itself. */
type KeyOrigin =
  | { kind: 'missing' }
  | { kind: 'process' | 'dotenv'; variable: string; identity: string }
  | { kind: 'manager'; service: keyof typeof MANAGERS; identity: string }
  | { kind: 'file'; inProject: boolean; identity: string };

function envOrigin(
  name: string,
  variable: string | undefined,
  env: Record<string, string | undefined>,
): KeyOrigin {
  const key = variable ? null : findUpstreamKey(name, env).key;
  const from = variable ?? key?.source;
  const value = variable ? env[variable]?.trim() : key?.reveal();
  if (!value || !from) return { kind: 'missing' };
  // A variable set for real wins over `.env`, which is only read when it is not.
  const kind = process.env[from]?.trim() ? 'process' : 'dotenv';
  return { kind, variable: from, identity: `value:${hashSecret(value)}` };
}

// Two environments whose sources name the same secret share one key, read or not.
function originOf(
  name: string,
  source: KeySourceConfig | undefined,
  env: Record<string, string | undefined>,
  dir: string,
): KeyOrigin {
  switch (source?.source) {
    case undefined:
    case 'env':
      return envOrigin(name, source?.variable, env);
    case 'file': {
      const path = resolve(dir, source.path);
      const within = relative(dir, path);
      const inProject = within !== '' && !within.startsWith('..') && !isAbsolute(within);
      return { kind: 'file', inProject, identity: `file:${path}` };
    }
    case 'aws':
      return {
        kind: 'manager',
        service: 'aws',
        identity: `aws:${source.region ?? ''}:${source.secretId}#${source.field ?? ''}@${source.versionStage}`,
      };
    case 'gcp':
      return {
        kind: 'manager',
        service: 'gcp',
        identity: `gcp:${source.project}/${source.secret}#${source.field ?? ''}@${source.version}`,
      };
    case 'vault':
      return {
        kind: 'manager',
        service: 'vault',
        identity: `vault:${source.address}/${source.namespace ?? ''}/${source.mount}/${source.path}#${source.field}@${source.version ?? ''}`,
      };
  }
}

function describe(name: string, origin: KeyOrigin): string {
  if (origin.kind === 'manager') return `${name}: ${MANAGERS[origin.service]}`;
  if (origin.kind === 'file') return `${name}: a key file`;
  if (origin.kind === 'process') return `${name}: ${origin.variable}`;
  return name;
}

function keySourceItem(config: Config, origins: Map<string, KeyOrigin>, dir: string): Item {
  const served = config.environments.map((n) => [n, origins.get(n)!] as const);
  const names = (kind: KeyOrigin['kind'], extra?: (o: KeyOrigin) => boolean) =>
    served.filter(([, o]) => o.kind === kind && (!extra || extra(o))).map(([n]) => n);
  const none = names('missing');
  const fromDotenv = names('dotenv');
  const inProject = names('file', (o) => o.kind === 'file' && o.inProject);
  if (none.length > 0) {
    return {
      status: 'warn',
      detail: `no upstream key for ${none.join(', ')}`,
      fix: 'set MISTRAL_API_KEY_<ENV> in the environment, or name a secret manager in upstreamKey.sources',
    };
  }
  if (fromDotenv.length > 0 || inProject.length > 0) {
    return {
      status: config.environments.includes('production') ? 'fail' : 'warn',
      detail: [
        fromDotenv.length > 0
          ? `key read from ${join(dir, '.env')} for ${fromDotenv.join(', ')}`
          : '',
        inProject.length > 0 ? `key file inside the project for ${inProject.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; '),
      fix: 'pass the key through the environment or a secret manager (upstreamKey.sources), not a file in the project',
    };
  }
  return {
    status: 'pass',
    detail: `upstream keys from ${served.map(([n, o]) => describe(n, o)).join(', ')}`,
  };
}

function distinctKeysItem(origins: Map<string, KeyOrigin>): Item {
  const byKey = new Map<string, string[]>();
  for (const [name, origin] of origins) {
    if (origin.kind === 'missing') continue;
    byKey.set(origin.identity, [...(byKey.get(origin.identity) ?? []), name]);
  }
  const shared = [...byKey.values()].filter((group) => group.length > 1);
  if (shared.length > 0) {
    return {
      status: 'fail',
      detail: `one key shared by ${shared.map((g) => g.join(' and ')).join('; ')}`,
      fix: 'give each environment its own key (MISTRAL_API_KEY_PRODUCTION, ..._STAGING, or one secret each)',
    };
  }
  return {
    status: 'pass',
    detail:
      byKey.size < 2
        ? 'one upstream key in use; give each environment its own when you add one'
        : `${byKey.size} environment keys, all distinct`,
  };
}

/**
 * The items about upstream keys: where each served environment's key comes from (the process
 * environment or a secret manager pass; `.env` or a key file inside the project does not in
 * production), and whether two environments share one key. Keys read from variables are
 * compared by hash; keys in a secret manager or a file by the secret they name.
 */
export async function keyItems(config: Config, dir: string): Promise<Record<string, Item>> {
  const env = await readEnvironment(dir);
  const sources = config.upstreamKey.sources;
  // Served environments, those with a source, and those with a variable of their own.
  const names = new Set([...config.environments, ...Object.keys(sources)]);
  for (const name of Object.keys(config.profiles)) {
    if (env[`MISTRAL_API_KEY_${name.toUpperCase().replace(/-/g, '_')}`]) names.add(name);
  }
  const origins = new Map([...names].map((n) => [n, originOf(n, sources[n], env, dir)] as const));
  return {
    keySource: keySourceItem(config, origins, dir),
    distinctKeys: distinctKeysItem(origins),
  };
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

/**
 * What protects traffic to the gateway: TLS of its own, or plain HTTP only where it cannot be
 * read on the way (loopback, or a trusted proxy that says the client came over HTTPS).
 */
function httpsItem(config: Config): Item {
  const { host, tls, trustProxy, allowInsecureHttp } = config.server;
  const fix = 'set server.tls, or put an HTTPS proxy in front and list it in server.trustProxy';
  if (tls) return { status: 'pass', detail: 'the gateway terminates TLS (server.tls)' };
  if (isLoopbackHost(host)) {
    return { status: 'pass', detail: `listens on ${host} only; expose it through HTTPS` };
  }
  if (allowInsecureHttp) {
    return {
      status: 'fail',
      detail: `plain HTTP served to other hosts on ${host} (server.allowInsecureHttp)`,
      fix,
    };
  }
  if (trustProxy.length > 0) {
    return {
      status: 'pass',
      detail: `plain HTTP only from loopback and ${trustProxy.length} trusted proxy address(es) forwarding HTTPS`,
    };
  }
  return {
    status: 'warn',
    detail: `listens on ${host} without TLS or a trusted proxy: other hosts are refused`,
    fix,
  };
}

/** The items read from the gateway settings of every served environment. */
export function gatewayItems(config: Config): Record<string, Item> {
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
    https: httpsItem(config),
  };
}

/** Whether every active virtual key is younger than `maxDays`. */
export async function keyAgeItem(config: Config, now: number, maxDays: number): Promise<Item> {
  if (config.store.databaseUrl) {
    return {
      status: 'skip',
      detail: 'virtual keys live in PostgreSQL; review their age with `mistral-guard keys list`',
    };
  }
  if (!existsSync(join(config.dataDir, SQLITE_FILE))) {
    return { status: 'skip', detail: 'no key store in the data directory' };
  }
  const store = openSqliteKeyStore(config.dataDir);
  try {
    const old = (await store.list())
      .filter((k) => keyStatus(k, now) === 'active')
      .filter((k) => now - Date.parse(k.createdAt) > maxDays * DAY_MS);
    if (old.length === 0) {
      return { status: 'pass', detail: `every active key is under ${maxDays} days old` };
    }
    return {
      status: 'warn',
      detail: `${old.length} key(s) older than ${maxDays} days: ${old.map((k) => k.id).join(', ')}`,
      fix: 'issue new keys, move clients over, then revoke the old ones',
    };
  } finally {
    await store.close();
  }
}
