import { randomUUID } from 'node:crypto';
import { Secret } from '../config/secret.js';
import { type AwsCredentials, signV4 } from './aws-sigv4.js';
import { UpstreamKeyError, type UpstreamKeyErrorCode } from './errors.js';
import {
  codeForStatus,
  DEFAULT_RETRY,
  failure,
  jsonOf,
  type RetryOptions,
  send,
  withRetries,
} from './http.js';
import { type Environment, type KeySource, keyFromText, textWithKey } from './source.js';

const SERVICE = 'AWS Secrets Manager';

/** Options of `awsKeySource`. */
export interface AwsKeySourceOptions {
  /** The secret's name or ARN. */
  secretId: string;
  /** For a JSON secret, the field holding the key. */
  field?: string | undefined;
  /** Default AWS_REGION, then AWS_DEFAULT_REGION. */
  region?: string | undefined;
  /** The staging label read and written; AWSCURRENT unless a rotation flow says otherwise. */
  versionStage?: string | undefined;
  /** Default `https://secretsmanager.<region>.amazonaws.com`. */
  endpoint?: string | undefined;
  readEnv: () => Promise<Environment>;
  timeoutMs: number;
  retry?: RetryOptions;
  now?: () => Date;
}

/** Error types of the JSON 1.1 protocol, by what they mean for us. */
const ERROR_TYPES: Record<string, UpstreamKeyErrorCode> = {
  ResourceNotFoundException: 'source_not_found',
  AccessDeniedException: 'source_auth_failed',
  UnrecognizedClientException: 'source_auth_failed',
  InvalidSignatureException: 'source_auth_failed',
  SignatureDoesNotMatch: 'source_auth_failed',
  IncompleteSignature: 'source_auth_failed',
  MissingAuthenticationToken: 'source_auth_failed',
  ExpiredTokenException: 'source_auth_failed',
  InvalidClientTokenId: 'source_auth_failed',
  // The secret's KMS key cannot be used by us: a permission problem too.
  DecryptionFailure: 'source_auth_failed',
  ThrottlingException: 'source_throttled',
  TooManyRequestsException: 'source_throttled',
  RequestLimitExceeded: 'source_throttled',
  InternalServiceError: 'source_unavailable',
  ServiceUnavailable: 'source_unavailable',
};

/**
 * The error type of an answer, from the body's `__type` or the `x-amzn-ErrorType` header.
 * Both may carry a namespace before `#` and a link after `:`; only the name is kept, and the
 * `Message` is never used: it may quote the request.
 */
function errorType(headers: Record<string, unknown>, body: string): string | undefined {
  let raw = typeof headers['x-amzn-errortype'] === 'string' ? headers['x-amzn-errortype'] : '';
  try {
    const parsed = JSON.parse(body) as { __type?: unknown };
    if (typeof parsed.__type === 'string') raw = parsed.__type;
  } catch {
    // No JSON body: the header, if any, says it.
  }
  const name = raw.split('#').pop()?.split(':')[0]?.trim();
  return name && /^[A-Za-z]{1,64}$/.test(name) ? name : undefined;
}

async function credentialsFrom(env: Environment): Promise<AwsCredentials> {
  const accessKeyId = env.AWS_ACCESS_KEY_ID?.trim();
  const secret = env.AWS_SECRET_ACCESS_KEY?.trim();
  // TODO: only credentials in the environment are read. Instance roles, EKS service-account
  // roles (web identity), container credentials and ~/.aws profiles fail with "no AWS
  // credentials" until a credential chain exists; done when a source on an EC2, ECS or EKS role
  // loads without AWS_ACCESS_KEY_ID set.
  if (!accessKeyId || !secret) {
    throw new UpstreamKeyError(
      'source_auth_failed',
      `no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
    );
  }
  const token = env.AWS_SESSION_TOKEN?.trim();
  return {
    accessKeyId,
    secretAccessKey: new Secret(secret, 'AWS_SECRET_ACCESS_KEY'),
    sessionToken: token ? new Secret(token, 'AWS_SESSION_TOKEN') : undefined,
  };
}

/**
 * An AWS Secrets Manager secret, through its JSON 1.1 API signed with SigV4: a plain string, or
 * one field of a JSON secret. `write` puts a new version under the configured stage (so it
 * becomes AWSCURRENT by default); the other fields of a JSON secret are kept.
 *
 * @example
 * const source = awsKeySource({ secretId: 'prod/mistral', field: 'api_key',
 *   region: 'eu-west-3', readEnv, timeoutMs: 5000 });
 */
export function awsKeySource(options: AwsKeySourceOptions): KeySource {
  const stage = options.versionStage ?? 'AWSCURRENT';
  const field = options.field;
  const location = `aws secret ${options.secretId}${field ? ` field ${field}` : ''}`;

  async function call(target: string, payload: object): Promise<Record<string, unknown>> {
    const env = await options.readEnv();
    const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    // The region becomes part of a host name: anything but a region name could send the
    // signed request elsewhere.
    if (!region || !/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(region)) {
      throw new UpstreamKeyError('source_failed', 'no valid AWS region: set region or AWS_REGION');
    }
    const credentials = await credentialsFrom(env);
    const url = new URL(`${options.endpoint ?? `https://secretsmanager.${region}.amazonaws.com`}/`);
    const body = JSON.stringify(payload);
    const headers = signV4({
      method: 'POST',
      url,
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `secretsmanager.${target}`,
      },
      body,
      region,
      service: 'secretsmanager',
      credentials,
      now: options.now?.() ?? new Date(),
    });
    // The host header is part of the signature; undici sets the same value itself.
    delete headers.host;
    const answer = await send(url.href, {
      method: 'POST',
      headers,
      body,
      timeoutMs: options.timeoutMs,
      service: SERVICE,
    });
    if (answer.status === 200) return jsonOf(answer, SERVICE);
    const type = errorType(answer.headers, answer.text);
    const code = (type && ERROR_TYPES[type]) || codeForStatus(answer.status);
    throw failure(code, SERVICE, answer.status, type);
  }

  async function read(): Promise<{ text: string; version: string | null }> {
    const answer = await call('GetSecretValue', {
      SecretId: options.secretId,
      VersionStage: stage,
    });
    if (typeof answer.SecretString !== 'string') {
      throw new UpstreamKeyError('source_bad_value', `${location} holds binary data, not text`);
    }
    const version = typeof answer.VersionId === 'string' ? answer.VersionId : null;
    return { text: answer.SecretString, version };
  }

  const retry = options.retry ?? DEFAULT_RETRY;
  return {
    kind: 'aws',
    location,
    async load() {
      const { text, version } = await withRetries(retry, read);
      const key = new Secret(keyFromText(text, field, location), location);
      return { key, version, own: true, warnings: [] };
    },
    async write(key) {
      const current = field === undefined ? null : (await withRetries(retry, read)).text;
      // One token for every attempt: a retried write that already landed is not repeated.
      const payload = {
        SecretId: options.secretId,
        SecretString: textWithKey(current, field, key.reveal()),
        ClientRequestToken: randomUUID(),
        VersionStages: [stage],
      };
      const answer = await withRetries(retry, () => call('PutSecretValue', payload));
      return { version: typeof answer.VersionId === 'string' ? answer.VersionId : null };
    },
  };
}
