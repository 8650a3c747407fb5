// A fake HashiCorp Vault on loopback: the KV v2 read and write endpoints (with check-and-set),
// token authentication and the AppRole login, answering with Vault's { errors: [...] } shape
// and its statuses (403 permission denied, 404 missing, 429 rate limited, 400 bad login).
import { randomBytes } from 'node:crypto';
import { type FakeServer, sendJson, startFakeServer } from './fake-server.js';

export interface FakeVault extends FakeServer {
  /** A token allowed to read and write every secret. */
  rootToken: string;
  approle: { roleId: string; secretId: string };
  setSecret(path: string, data: Record<string, string>): void;
  /** The latest version's data. */
  secret(path: string): Record<string, string> | undefined;
  throttle(count: number): void;
  /** Every token handed out by a login stops working. */
  revokeLoginTokens(): void;
  logins: number;
}

export async function startFakeVault(mount = 'secret'): Promise<FakeVault> {
  const rootToken = `hvs.${randomBytes(12).toString('hex')}`;
  const approle = { roleId: 'role-1234', secretId: randomBytes(12).toString('hex') };
  const kv = new Map<string, Array<Record<string, string>>>();
  const loginTokens = new Set<string>();
  let throttled = 0;
  let logins = 0;
  const errors = (message: string) => ({ errors: [message] });

  const server = await startFakeServer((req, res) => {
    const url = new URL(req.path, 'http://vault');
    if (req.method === 'POST' && url.pathname === '/v1/auth/approle/login') {
      const body = JSON.parse(req.body) as { role_id?: string; secret_id?: string };
      if (body.role_id !== approle.roleId || body.secret_id !== approle.secretId) {
        return sendJson(res, 400, errors('invalid role or secret ID'));
      }
      const token = `hvs.${randomBytes(12).toString('hex')}`;
      loginTokens.add(token);
      logins++;
      return sendJson(res, 200, {
        auth: { client_token: token, lease_duration: 3600, renewable: true },
      });
    }
    const token = String(req.headers['x-vault-token'] ?? '');
    if (token !== rootToken && !loginTokens.has(token)) {
      return sendJson(res, 403, errors('permission denied'));
    }
    if (throttled > 0) {
      throttled--;
      return sendJson(res, 429, errors('request path "x": rate limit quota exceeded'));
    }
    const prefix = `/v1/${mount}/data/`;
    if (!url.pathname.startsWith(prefix)) return sendJson(res, 404, errors('no handler for route'));
    const path = url.pathname.slice(prefix.length);
    const versions = kv.get(path);
    if (req.method === 'GET') {
      const wanted = url.searchParams.get('version');
      const n = wanted ? Number(wanted) : (versions?.length ?? 0);
      const data = versions?.[n - 1];
      if (!data) return sendJson(res, 404, errors(''));
      return sendJson(res, 200, { data: { data, metadata: { version: n, destroyed: false } } });
    }
    if (req.method === 'POST') {
      const body = JSON.parse(req.body) as {
        options?: { cas?: number };
        data: Record<string, string>;
      };
      const current = versions?.length ?? 0;
      if (body.options?.cas !== undefined && body.options.cas !== current) {
        return sendJson(
          res,
          400,
          errors('check-and-set parameter did not match the current version'),
        );
      }
      kv.set(path, [...(versions ?? []), body.data]);
      return sendJson(res, 200, { data: { version: current + 1 } });
    }
    return sendJson(res, 405, errors('unsupported operation'));
  });

  return {
    ...server,
    rootToken,
    approle,
    setSecret(path, data) {
      kv.set(path, [...(kv.get(path) ?? []), data]);
    },
    secret: (path) => kv.get(path)?.at(-1),
    throttle(count) {
      throttled = count;
    },
    revokeLoginTokens() {
      loginTokens.clear();
    },
    get logins() {
      return logins;
    },
  };
}
