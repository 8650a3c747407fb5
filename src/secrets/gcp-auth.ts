import { createSign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isLoopbackHost } from '../config/schema.js';
import { Secret } from '../config/secret.js';
import { UpstreamKeyError } from './errors.js';
import { codeForStatus, failure, jsonOf, send } from './http.js';
import type { Environment } from './source.js';

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const SERVICE = 'Google OAuth';
/** A token is renewed this long before it expires (at most), so no request carries a dying one. */
const EARLY_RENEWAL_MS = 5 * 60_000;

/** Where GCP access tokens come from, as configured. */
export type GcpCredentials = 'default' | 'metadata' | { file: string };

/** Hands out an OAuth access token, cached until shortly before it expires. */
export interface GcpTokenSource {
  token(): Promise<Secret>;
  /** Forgets the cached token, after the service refused it. */
  reset(): void;
}

interface ServiceAccount {
  clientEmail: string;
  privateKey: Secret;
  privateKeyId: string | undefined;
  tokenUri: string;
}

async function readServiceAccount(path: string): Promise<ServiceAccount> {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'not JSON';
    throw new UpstreamKeyError(
      'source_auth_failed',
      `cannot read GCP credentials ${path} (${code})`,
    );
  }
  const { client_email, private_key, private_key_id, token_uri } = data;
  // TODO: only service-account key files are understood. Workload identity federation files
  // (`type: external_account`) are refused as "not a service-account key file" until their
  // token exchange exists; done when such a file yields a token from its STS endpoint.
  if (typeof client_email !== 'string' || typeof private_key !== 'string') {
    throw new UpstreamKeyError('source_auth_failed', `${path} is not a service-account key file`);
  }
  const tokenUri =
    typeof token_uri === 'string' ? token_uri : 'https://oauth2.googleapis.com/token';
  // The token URI comes from a file: a signed assertion must not be sent in clear to a host
  // that file happens to name.
  const url = new URL(tokenUri);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new UpstreamKeyError('source_auth_failed', `${path} names a token_uri that is not https`);
  }
  return {
    clientEmail: client_email,
    privateKey: new Secret(private_key, path),
    privateKeyId: typeof private_key_id === 'string' ? private_key_id : undefined,
    tokenUri,
  };
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A JWT asserting the service account, signed with its key, for the token exchange. */
function assertion(account: ServiceAccount, nowMs: number): string {
  const iat = Math.floor(nowMs / 1000);
  const header = base64url({ alg: 'RS256', typ: 'JWT', kid: account.privateKeyId });
  const claims = base64url({
    iss: account.clientEmail,
    scope: SCOPE,
    aud: account.tokenUri,
    iat,
    exp: iat + 3600,
  });
  let signature: string;
  try {
    const signer = createSign('RSA-SHA256').update(`${header}.${claims}`);
    signature = signer.sign(account.privateKey.reveal()).toString('base64url');
  } catch (error) {
    throw new UpstreamKeyError(
      'source_auth_failed',
      'the service-account private key is unusable',
      {
        cause: error,
      },
    );
  }
  return `${header}.${claims}.${signature}`;
}

interface Token {
  value: Secret;
  renewAt: number;
}

function tokenOf(data: Record<string, unknown>, nowMs: number): Token {
  const { access_token, expires_in } = data;
  if (typeof access_token !== 'string' || !access_token) {
    throw new UpstreamKeyError('source_auth_failed', `${SERVICE} answered without a token`);
  }
  const lifetimeMs = (typeof expires_in === 'number' && expires_in > 0 ? expires_in : 300) * 1000;
  const renewAt = nowMs + lifetimeMs - Math.min(EARLY_RENEWAL_MS, lifetimeMs / 2);
  return { value: new Secret(access_token, SERVICE), renewAt };
}

async function exchange(account: ServiceAccount, timeoutMs: number, nowMs: number) {
  const form = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
    assertion: assertion(account, nowMs),
  });
  const answer = await send(account.tokenUri, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    timeoutMs,
    service: SERVICE,
  });
  // OAuth answers a bad grant with 400 invalid_grant: our credentials, not the request.
  if (answer.status === 400) throw failure('source_auth_failed', SERVICE, 400);
  if (answer.status !== 200) throw failure(codeForStatus(answer.status), SERVICE, answer.status);
  return tokenOf(jsonOf(answer, SERVICE), nowMs);
}

/**
 * The metadata server of the VM or pod; `GCE_METADATA_HOST` names another, as Google's own
 * libraries allow. Plain HTTP by design: the server is only reachable from the machine.
 */
async function fromMetadata(env: Environment, timeoutMs: number, nowMs: number) {
  const host = env.GCE_METADATA_HOST?.trim() || 'metadata.google.internal';
  const answer = await send(
    `http://${host}/computeMetadata/v1/instance/service-accounts/default/token`,
    { method: 'GET', headers: { 'metadata-flavor': 'Google' }, timeoutMs, service: 'GCP metadata' },
  );
  if (answer.status !== 200) {
    throw failure(codeForStatus(answer.status), 'GCP metadata', answer.status);
  }
  return tokenOf(jsonOf(answer, 'GCP metadata'), nowMs);
}

/**
 * Access tokens for Secret Manager: from a service-account key file (its JWT exchanged at the
 * file's token URI) or from the metadata server. `default` picks the file named by
 * GOOGLE_APPLICATION_CREDENTIALS when set, the metadata server otherwise.
 *
 * @example
 * const tokens = gcpTokenSource({ file: '/etc/gcp/sa.json' }, { readEnv, timeoutMs: 5000 });
 * const bearer = (await tokens.token()).reveal();
 */
export function gcpTokenSource(
  credentials: GcpCredentials,
  options: { readEnv: () => Promise<Environment>; timeoutMs: number; now?: () => number },
): GcpTokenSource {
  const now = options.now ?? Date.now;
  let cached: Token | null = null;

  async function fetchToken(): Promise<Token> {
    const env = await options.readEnv();
    const file =
      typeof credentials === 'object'
        ? credentials.file
        : credentials === 'default'
          ? env.GOOGLE_APPLICATION_CREDENTIALS?.trim()
          : undefined;
    if (file) return exchange(await readServiceAccount(file), options.timeoutMs, now());
    return fromMetadata(env, options.timeoutMs, now());
  }

  return {
    async token() {
      if (!cached || cached.renewAt <= now()) cached = await fetchToken();
      return cached.value;
    },
    reset() {
      cached = null;
    },
  };
}
