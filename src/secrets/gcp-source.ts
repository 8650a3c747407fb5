import { Secret } from '../config/secret.js';
import { UpstreamKeyError } from './errors.js';
import { type GcpCredentials, gcpTokenSource } from './gcp-auth.js';
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
import { type Environment, type KeySource, keyFromText, textWithKey } from './source.js';

const SERVICE = 'GCP Secret Manager';

/** Options of `gcpKeySource`. */
export interface GcpKeySourceOptions {
  project: string;
  secret: string;
  /** A version number or `latest`. */
  version?: string | undefined;
  /** For a JSON payload, the field holding the key. */
  field?: string | undefined;
  credentials?: GcpCredentials | undefined;
  /** Default `https://secretmanager.googleapis.com`. */
  endpoint?: string | undefined;
  readEnv: () => Promise<Environment>;
  timeoutMs: number;
  retry?: RetryOptions;
  now?: () => number;
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli), the checksum Secret Manager keeps beside each payload. */
export function crc32c(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC32C_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The `error.status` of a Google API error (`NOT_FOUND`, ...); its message is left out. */
function googleStatus(answer: HttpAnswer): string | undefined {
  try {
    const status = (JSON.parse(answer.text) as { error?: { status?: unknown } }).error?.status;
    return typeof status === 'string' && /^[A-Z_]{1,64}$/.test(status) ? status : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A GCP Secret Manager secret version (a number or `latest`), through the REST API: the payload
 * is the key, or a JSON object holding it in `field`. The payload's checksum is checked when the
 * service sends one. `write` adds a version, which `latest` then reads.
 *
 * @example
 * const source = gcpKeySource({ project: 'acme-prod', secret: 'mistral-key', readEnv,
 *   timeoutMs: 5000 });
 */
export function gcpKeySource(options: GcpKeySourceOptions): KeySource {
  const version = options.version ?? 'latest';
  const field = options.field;
  const base = `${options.endpoint ?? 'https://secretmanager.googleapis.com'}/v1/projects/${
    options.project
  }/secrets/${options.secret}`;
  const location =
    `gcp secret projects/${options.project}/secrets/${options.secret}/versions/${version}` +
    (field ? ` field ${field}` : '');
  const tokens = gcpTokenSource(options.credentials ?? 'default', options);

  /** One authorised call; a refused token is dropped and a fresh one tried once. */
  async function call(url: string, method: 'GET' | 'POST', body?: object): Promise<HttpAnswer> {
    for (let attempt = 1; ; attempt++) {
      const token = await tokens.token();
      const answer = await send(url, {
        method,
        headers: {
          authorization: `Bearer ${token.reveal()}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
        timeoutMs: options.timeoutMs,
        service: SERVICE,
      });
      if (answer.status === 200) return answer;
      if (answer.status === 401 && attempt === 1) {
        tokens.reset();
        continue;
      }
      throw failure(codeForStatus(answer.status), SERVICE, answer.status, googleStatus(answer));
    }
  }

  async function read(): Promise<{ text: string; version: string | null }> {
    const answer = jsonOf(await call(`${base}/versions/${version}:access`, 'GET'), SERVICE);
    const payload = answer.payload as { data?: unknown; dataCrc32c?: unknown } | undefined;
    if (typeof payload?.data !== 'string') {
      throw new UpstreamKeyError('source_bad_value', `${location} has no payload`);
    }
    const data = Buffer.from(payload.data, 'base64');
    if (payload.dataCrc32c !== undefined && String(crc32c(data)) !== String(payload.dataCrc32c)) {
      throw new UpstreamKeyError('source_bad_value', `${location} failed its checksum`);
    }
    const name = typeof answer.name === 'string' ? answer.name : '';
    return { text: data.toString('utf8'), version: name.split('/').pop() || null };
  }

  const retry = options.retry ?? DEFAULT_RETRY;
  return {
    kind: 'gcp',
    location,
    async load() {
      const found = await withRetries(retry, read);
      const key = new Secret(keyFromText(found.text, field, location), location);
      return { key, version: found.version, own: true, warnings: [] };
    },
    async write(key) {
      if (version !== 'latest') {
        const message = `${location} is pinned to one version: a new version would not be read`;
        throw new UpstreamKeyError('source_read_only', message);
      }
      const current = field === undefined ? null : (await withRetries(retry, read)).text;
      const data = Buffer.from(textWithKey(current, field, key.reveal()), 'utf8');
      const body = { payload: { data: data.toString('base64'), dataCrc32c: String(crc32c(data)) } };
      const answer = jsonOf(await call(`${base}:addVersion`, 'POST', body), SERVICE);
      const name = typeof answer.name === 'string' ? answer.name : '';
      return { version: name.split('/').pop() || null };
    },
  };
}
