import { Secret } from '../config/secret.js';
import { UpstreamKeyError } from './errors.js';
import {
  codeForStatus,
  DEFAULT_RETRY,
  failure,
  type HttpAnswer,
  jsonOf,
  type RetryOptions,
  send,
  withRetries,
} from './http.js';
import type { Environment, KeySource } from './source.js';

const SERVICE = 'Vault';

/** How we log in to Vault: a token from a variable, or an AppRole's ids from variables. */
export type VaultAuth =
  | { method: 'token'; tokenEnv: string }
  | { method: 'approle'; mount: string; roleIdEnv: string; secretIdEnv: string };

/** Options of `vaultKeySource`. */
export interface VaultKeySourceOptions {
  address: string;
  /** The KV v2 mount; default `secret`. */
  mount?: string | undefined;
  path: string;
  field: string;
  /** A fixed version; without it, the latest. */
  version?: number | undefined;
  namespace?: string | undefined;
  auth: VaultAuth;
  readEnv: () => Promise<Environment>;
  timeoutMs: number;
  retry?: RetryOptions;
  now?: () => number;
}

interface Token {
  value: Secret;
  /** When to log in again; null for a token we were given and cannot renew. */
  renewAt: number | null;
}

interface KvEntry {
  data: Record<string, unknown>;
  version: number | null;
}

/**
 * A field of a HashiCorp Vault KV v2 secret, through Vault's HTTP API. With AppRole, the token
 * from the login is kept until 80% of its lease and fetched again when Vault refuses it.
 * `write` stores a new version with check-and-set on the version read, keeping the other
 * fields, so a concurrent change is never overwritten.
 *
 * @example
 * const source = vaultKeySource({ address: 'https://vault.internal:8200', path: 'mistral/prod',
 *   field: 'api_key', auth: { method: 'token', tokenEnv: 'VAULT_TOKEN' }, readEnv,
 *   timeoutMs: 5000 });
 */
export function vaultKeySource(options: VaultKeySourceOptions): KeySource {
  const mount = options.mount ?? 'secret';
  const now = options.now ?? Date.now;
  const dataUrl = `${options.address}/v1/${mount}/data/${options.path}`;
  const location = `vault ${mount}/${options.path} field ${options.field}`;
  let token: Token | null = null;

  function headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { 'x-vault-request': 'true', ...extra };
    if (options.namespace) h['x-vault-namespace'] = options.namespace;
    return h;
  }

  async function login(): Promise<Token> {
    const env = await options.readEnv();
    const auth = options.auth;
    if (auth.method === 'token') {
      const value = env[auth.tokenEnv]?.trim();
      if (!value) throw new UpstreamKeyError('source_auth_failed', `${auth.tokenEnv} is not set`);
      return { value: new Secret(value, auth.tokenEnv), renewAt: null };
    }
    const roleId = env[auth.roleIdEnv]?.trim();
    const secretId = env[auth.secretIdEnv]?.trim();
    if (!roleId || !secretId) {
      const message = `set ${auth.roleIdEnv} and ${auth.secretIdEnv} for the AppRole login`;
      throw new UpstreamKeyError('source_auth_failed', message);
    }
    const answer = await send(`${options.address}/v1/auth/${auth.mount}/login`, {
      method: 'POST',
      headers: headers({ 'content-type': 'application/json' }),
      body: JSON.stringify({ role_id: roleId, secret_id: secretId }),
      timeoutMs: options.timeoutMs,
      service: SERVICE,
    });
    // Vault answers a wrong role or secret id with 400.
    if (answer.status === 400) throw failure('source_auth_failed', SERVICE, 400, 'approle login');
    if (answer.status !== 200) throw vaultFailure(answer, 'approle login');
    const login = jsonOf(answer, SERVICE).auth as Record<string, unknown> | undefined;
    if (typeof login?.client_token !== 'string') {
      throw new UpstreamKeyError('source_auth_failed', `${SERVICE} login gave no token`);
    }
    const lease = typeof login.lease_duration === 'number' ? login.lease_duration : 0;
    const renewAt = lease > 0 ? now() + lease * 800 : null;
    return { value: new Secret(login.client_token, `${SERVICE} token`), renewAt };
  }

  /** One authorised call; with AppRole, a refused token is replaced by a new login once. */
  async function call(url: string, method: 'GET' | 'POST', body?: object): Promise<HttpAnswer> {
    for (let attempt = 1; ; attempt++) {
      if (!token || (token.renewAt !== null && token.renewAt <= now())) token = await login();
      const answer = await send(url, {
        method,
        headers: headers({
          'x-vault-token': token.value.reveal(),
          ...(body ? { 'content-type': 'application/json' } : {}),
        }),
        body: body ? JSON.stringify(body) : undefined,
        timeoutMs: options.timeoutMs,
        service: SERVICE,
      });
      if (answer.status === 403) token = null;
      if (answer.status === 403 && attempt === 1 && options.auth.method === 'approle') continue;
      return answer;
    }
  }

  async function read(): Promise<KvEntry> {
    const version = options.version;
    const answer = await call(`${dataUrl}${version ? `?version=${version}` : ''}`, 'GET');
    if (answer.status !== 200) throw vaultFailure(answer);
    const kv = jsonOf(answer, SERVICE).data as { data?: unknown; metadata?: unknown } | undefined;
    if (typeof kv?.data !== 'object' || kv.data === null) {
      throw new UpstreamKeyError('source_not_found', `${location}: the version has no data`);
    }
    const meta = kv.metadata as { version?: unknown } | undefined;
    const found = typeof meta?.version === 'number' ? meta.version : null;
    return { data: kv.data as Record<string, unknown>, version: found };
  }

  const retry = options.retry ?? DEFAULT_RETRY;
  return {
    kind: 'vault',
    location,
    async load() {
      const entry = await withRetries(retry, read);
      const value = entry.data[options.field];
      if (typeof value !== 'string' || !value.trim()) {
        const code = value === undefined ? 'source_not_found' : 'source_bad_value';
        throw new UpstreamKeyError(code, `${location}: the field is missing or not a string`);
      }
      const key = new Secret(value.trim(), location);
      const version = entry.version === null ? null : String(entry.version);
      return { key, version, own: true, warnings: [] };
    },
    async write(key) {
      if (options.version !== undefined) {
        const message = `${location} is pinned to one version: a new version would not be read`;
        throw new UpstreamKeyError('source_read_only', message);
      }
      const current = await withRetries(retry, read);
      const answer = await call(dataUrl, 'POST', {
        options: { cas: current.version ?? 0 },
        data: { ...current.data, [options.field]: key.reveal() },
      });
      if (answer.status === 400 && answer.text.includes('check-and-set')) {
        const message = `${location} changed while it was being rotated; nothing was written`;
        throw new UpstreamKeyError('source_conflict', message);
      }
      if (answer.status !== 200) throw vaultFailure(answer);
      const written = (jsonOf(answer, SERVICE).data as { version?: unknown } | undefined)?.version;
      return { version: typeof written === 'number' ? String(written) : null };
    },
  };
}

/** Vault's errors carry messages that may quote paths or input; only the status is kept. */
function vaultFailure(answer: HttpAnswer, what?: string): UpstreamKeyError {
  return failure(codeForStatus(answer.status), SERVICE, answer.status, what);
}
