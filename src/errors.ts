/**
 * The error catalogue. Every failure the gateway, the library or the CLI reports to a caller has
 * a stable code from this table. Codes are a versioned contract: never rename or reuse one.
 * Match errors by `code`, not by class identity.
 */

/** Mistral's error `type` values, used so that SDKs classify our errors as they classify theirs. */
export type MistralErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'rate_limit_error'
  | 'server_error';

interface CodeInfo {
  status: number;
  type: MistralErrorType;
  message: string;
}

export const ERROR_CODES = {
  missing_api_key: {
    status: 401,
    type: 'authentication_error',
    message: 'No API key was sent. Send it as "Authorization: Bearer <key>".',
  },
  invalid_api_key: {
    status: 401,
    type: 'authentication_error',
    message: 'The API key is not valid.',
  },
  revoked_api_key: {
    status: 401,
    type: 'authentication_error',
    message: 'The API key has been revoked.',
  },
  expired_api_key: {
    status: 401,
    type: 'authentication_error',
    message: 'The API key has expired.',
  },
  rotated_api_key: {
    status: 401,
    type: 'authentication_error',
    message: 'The API key was rotated and its grace period has ended; use the new key.',
  },
  environment_not_allowed: {
    status: 403,
    type: 'permission_error',
    message: 'The API key belongs to another environment than this gateway serves.',
  },
  admin_unauthorized: {
    status: 401,
    type: 'authentication_error',
    message: 'The admin token is missing or wrong.',
  },
  admin_forbidden: {
    status: 403,
    type: 'permission_error',
    message: 'The admin API is not reachable from this address.',
  },
  https_required: {
    status: 403,
    type: 'permission_error',
    message: 'Plain HTTP is refused here; connect with HTTPS.',
  },
  endpoint_not_allowed: {
    status: 403,
    type: 'permission_error',
    message: 'This endpoint is not allowed through the gateway.',
  },
  model_not_allowed: {
    status: 403,
    type: 'permission_error',
    message: 'The API key may not use this model.',
  },
  not_found: {
    status: 404,
    type: 'invalid_request_error',
    message: 'Not found.',
  },
  method_not_allowed: {
    status: 405,
    type: 'invalid_request_error',
    message: 'This method is not allowed on this endpoint.',
  },
  bad_request: {
    status: 400,
    type: 'invalid_request_error',
    message: 'The HTTP request is malformed.',
  },
  request_timeout: {
    status: 408,
    type: 'invalid_request_error',
    message: 'The request was not received in time.',
  },
  headers_too_large: {
    status: 431,
    type: 'invalid_request_error',
    message: 'The request headers are too large.',
  },
  invalid_json: {
    status: 400,
    type: 'invalid_request_error',
    message: 'The request body is not valid JSON.',
  },
  invalid_request: {
    status: 400,
    type: 'invalid_request_error',
    message: 'The request body is not valid.',
  },
  max_tokens_exceeded: {
    status: 400,
    type: 'invalid_request_error',
    message: 'max_tokens is above the limit for this key.',
  },
  body_too_large: {
    status: 413,
    type: 'invalid_request_error',
    message: 'The request body is too large.',
  },
  unsupported_media_type: {
    status: 415,
    type: 'invalid_request_error',
    message: 'The request body must be sent as application/json.',
  },
  sensitive_data_blocked: {
    status: 400,
    type: 'invalid_request_error',
    message: 'The request was blocked because it contains sensitive data.',
  },
  inspection_failed: {
    status: 500,
    type: 'server_error',
    message: 'The content could not be inspected, so it was not forwarded.',
  },
  rate_limited: {
    status: 429,
    type: 'rate_limit_error',
    message: 'Too many requests for this key. Retry after the time in Retry-After.',
  },
  token_limit: {
    status: 429,
    type: 'rate_limit_error',
    message: 'Too many tokens per minute for this key. Retry after the time in Retry-After.',
  },
  budget_exhausted: {
    status: 429,
    type: 'rate_limit_error',
    message: 'The token budget of this key is used up.',
  },
  too_many_concurrent: {
    status: 429,
    type: 'rate_limit_error',
    message: 'Too many requests in flight for this key.',
  },
  too_many_auth_failures: {
    status: 429,
    type: 'rate_limit_error',
    message: 'Too many failed authentication attempts. Retry after the time in Retry-After.',
  },
  upstream_error: {
    status: 502,
    type: 'server_error',
    message: 'The upstream API failed to answer properly.',
  },
  upstream_timeout: {
    status: 504,
    type: 'server_error',
    message: 'The upstream API did not answer in time.',
  },
  upstream_unavailable: {
    status: 503,
    type: 'server_error',
    message: 'The upstream API is unavailable.',
  },
  upstream_auth_failed: {
    status: 503,
    type: 'server_error',
    message: 'The gateway could not authenticate to the upstream API.',
  },
  store_unavailable: {
    status: 503,
    type: 'server_error',
    message: 'The key store cannot be reached right now. Retry after the time in Retry-After.',
  },
  not_ready: {
    status: 503,
    type: 'server_error',
    message: 'The gateway is not ready.',
  },
  client_closed: {
    status: 499,
    type: 'invalid_request_error',
    message: 'The client closed the connection before the answer was complete.',
  },
  internal_error: {
    status: 500,
    type: 'server_error',
    message: 'Internal error.',
  },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One offending field of a request, with its path written as `messages[2].content`. */
export interface FieldIssue {
  path: string;
  message: string;
}

export interface GuardErrorOptions {
  /** Replaces the catalogue message; must be safe to show to the caller. */
  message?: string;
  /** The request field at fault, reported as Mistral's `param`. */
  param?: string | null;
  issues?: FieldIssue[];
  /** Overrides the catalogue status (used to relay an upstream status). */
  status?: number;
  headers?: Record<string, string>;
  /**
   * The virtual key a refusal is about, when it was found but may not be used (revoked,
   * expired, rotated): the audit trail names it; never sent to a caller.
   */
  subject?: { id: string; name: string; environment: string };
  /** Internal detail for the log; never sent to a caller. */
  cause?: unknown;
}

/**
 * The one error class of mistral-guard. `message` is always safe to show; internal detail goes
 * in `cause` and reaches only the log.
 */
export class GuardError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: MistralErrorType;
  readonly param: string | null;
  readonly issues: FieldIssue[] | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly subject: GuardErrorOptions['subject'];

  constructor(code: ErrorCode, options: GuardErrorOptions = {}) {
    const info: CodeInfo = ERROR_CODES[code];
    super(options.message ?? info.message, options.cause ? { cause: options.cause } : undefined);
    this.name = 'GuardError';
    this.code = code;
    this.status = options.status ?? info.status;
    this.type = info.type;
    this.param = options.param ?? null;
    this.issues = options.issues;
    this.headers = options.headers;
    this.subject = options.subject;
  }
}

/** True when `value` is a mistral-guard error, optionally with the given code. */
export function isGuardError(value: unknown, code?: ErrorCode): value is GuardError {
  if (!(value instanceof Error) || (value as GuardError).name !== 'GuardError') return false;
  return code === undefined || (value as GuardError).code === code;
}

/** Mistral's error object, plus the request id and, for invalid bodies, every offending field. */
export interface ErrorBody {
  object: 'error';
  message: string;
  type: MistralErrorType;
  param: string | null;
  code: ErrorCode;
  request_id: string;
  issues?: FieldIssue[];
}

/** Builds the body a caller sees. Anything that is not a GuardError becomes a generic 500. */
export function toErrorBody(
  error: unknown,
  requestId: string,
): { status: number; body: ErrorBody } {
  const e = isGuardError(error) ? error : new GuardError('internal_error', { cause: error });
  const body: ErrorBody = {
    object: 'error',
    message: e.message,
    type: e.type,
    param: e.param,
    code: e.code,
    request_id: requestId,
  };
  if (e.issues?.length) body.issues = e.issues;
  return { status: e.status, body };
}
