// A fake Google OAuth token endpoint, metadata server and Secret Manager REST API on loopback.
// The token endpoint checks the JWT assertion's RS256 signature against the service account's
// public key; Secret Manager accepts only tokens it issued and answers with Google's error
// shape: { error: { code, message, status } }.
import { createVerify, generateKeyPairSync, randomBytes } from 'node:crypto';
import { crc32c } from '../../src/secrets/gcp-source.js';
import { type FakeServer, sendJson, startFakeServer } from './fake-server.js';

export interface FakeGcp extends FakeServer {
  /** A service-account key file's content, its token_uri pointing at this server. */
  serviceAccount: Record<string, string>;
  setSecret(name: string, text: string): void;
  /** The payload of a secret's latest version. */
  latest(name: string): string | undefined;
  /** The next `count` Secret Manager requests are answered 429 RESOURCE_EXHAUSTED. */
  throttle(count: number): void;
  /** Every token issued so far stops working (as after a revocation). */
  revokeTokens(): void;
  /** Answers the next access with a payload whose checksum does not match. */
  corruptNext(): void;
  tokensIssued: number;
}

function googleError(status: number, code: string) {
  return { error: { code: status, message: 'fake', status: code } };
}

export async function startFakeGcp(project: string): Promise<FakeGcp> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientEmail = `guard@${project}.iam.gserviceaccount.com`;
  const secrets = new Map<string, string[]>();
  const tokens = new Set<string>();
  let throttled = 0;
  let corrupt = false;
  let issued = 0;

  const issue = () => {
    const token = `ya29.${randomBytes(16).toString('hex')}`;
    tokens.add(token);
    issued++;
    return { access_token: token, expires_in: 3600, token_type: 'Bearer' };
  };

  let url = '';
  const server = await startFakeServer((req, res) => {
    if (req.path === '/token' && req.method === 'POST') {
      const form = new URLSearchParams(req.body);
      const [header, claims, signature] = (form.get('assertion') ?? '').split('.');
      const verifier = createVerify('RSA-SHA256').update(`${header}.${claims}`);
      const valid =
        form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer' &&
        signature !== undefined &&
        verifier.verify(publicKey, Buffer.from(signature, 'base64url'));
      const body = valid ? JSON.parse(Buffer.from(claims!, 'base64url').toString()) : {};
      if (!valid || body.iss !== clientEmail || body.aud !== `${url}/token`) {
        return sendJson(res, 400, { error: 'invalid_grant' });
      }
      return sendJson(res, 200, issue());
    }
    if (req.path === '/computeMetadata/v1/instance/service-accounts/default/token') {
      if (req.headers['metadata-flavor'] !== 'Google') return sendJson(res, 403, {});
      return sendJson(res, 200, issue());
    }

    const bearer = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!tokens.has(bearer)) return sendJson(res, 401, googleError(401, 'UNAUTHENTICATED'));
    if (throttled > 0) {
      throttled--;
      return sendJson(res, 429, googleError(429, 'RESOURCE_EXHAUSTED'));
    }
    const prefix = `/v1/projects/${project}/secrets/`;
    if (!req.path.startsWith(prefix))
      return sendJson(res, 403, googleError(403, 'PERMISSION_DENIED'));
    const rest = req.path.slice(prefix.length);
    const add = /^([^/:]+):addVersion$/.exec(rest);
    if (add && req.method === 'POST') {
      const versions = secrets.get(add[1]!);
      if (!versions) return sendJson(res, 404, googleError(404, 'NOT_FOUND'));
      const { payload } = JSON.parse(req.body) as { payload: { data: string; dataCrc32c: string } };
      const data = Buffer.from(payload.data, 'base64');
      if (String(crc32c(data)) !== payload.dataCrc32c) {
        return sendJson(res, 400, googleError(400, 'INVALID_ARGUMENT'));
      }
      versions.push(data.toString('utf8'));
      return sendJson(res, 200, {
        name: `projects/123/secrets/${add[1]}/versions/${versions.length}`,
      });
    }
    const access = /^([^/]+)\/versions\/([^/:]+):access$/.exec(rest);
    if (!access || req.method !== 'GET') return sendJson(res, 404, googleError(404, 'NOT_FOUND'));
    const versions = secrets.get(access[1]!);
    const n = access[2] === 'latest' ? versions?.length : Number(access[2]);
    const text = n ? versions?.[n - 1] : undefined;
    if (text === undefined) return sendJson(res, 404, googleError(404, 'NOT_FOUND'));
    const data = Buffer.from(text, 'utf8');
    const checksum = crc32c(data) + (corrupt ? 1 : 0);
    corrupt = false;
    return sendJson(res, 200, {
      name: `projects/123/secrets/${access[1]}/versions/${n}`,
      payload: { data: data.toString('base64'), dataCrc32c: String(checksum) },
    });
  });
  url = server.url;

  return {
    ...server,
    serviceAccount: {
      type: 'service_account',
      project_id: project,
      private_key_id: 'fake-key-1',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: clientEmail,
      token_uri: `${url}/token`,
    },
    setSecret(name, text) {
      secrets.set(name, [...(secrets.get(name) ?? []), text]);
    },
    latest: (name) => secrets.get(name)?.at(-1),
    throttle(count) {
      throttled = count;
    },
    revokeTokens() {
      tokens.clear();
    },
    corruptNext() {
      corrupt = true;
    },
    get tokensIssued() {
      return issued;
    },
  };
}
