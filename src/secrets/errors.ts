/**
 * Failures of loading, checking and rotating upstream keys. No client sees them: the gateway
 * reports them in its status and turns a missing key into `upstream_auth_failed`. Codes are
 * stable; match by `code`, never by class identity. Messages name the source and the failure,
 * never a value: a value may be the key itself, or another secret stored beside it.
 */

/** Why a key could not be loaded, accepted or rotated. */
export type UpstreamKeyErrorCode =
  /** The secret manager refused our credentials, or they are missing. */
  | 'source_auth_failed'
  /** The secret, its version, its field, the file or the variable does not exist. */
  | 'source_not_found'
  /** The secret manager asked us to slow down. */
  | 'source_throttled'
  /** The secret manager did not answer, or answered with a server error. */
  | 'source_unavailable'
  /** The value is there but unusable: empty, binary, not JSON where a field was asked for. */
  | 'source_bad_value'
  /** The secret manager refused the request for another reason. */
  | 'source_failed'
  /** The source cannot be written (the process environment). */
  | 'source_read_only'
  /** The secret changed between our read and our write; nothing was written. */
  | 'source_conflict'
  /** The value does not look like a Mistral key (32 letters and digits). */
  | 'key_malformed'
  /** The environment's key is not its own: it is shared with another environment. */
  | 'key_shared'
  /** The new key of a rotation is the key already in use. */
  | 'key_unchanged'
  /** Mistral refused the key (401 or 403). */
  | 'key_invalid'
  /** Mistral could not be asked whether the key is valid. */
  | 'key_unverified'
  /** No key is loaded for the environment. */
  | 'key_missing';

/** A key lifecycle failure with a stable code; `cause` carries internal detail for the log. */
export class UpstreamKeyError extends Error {
  readonly code: UpstreamKeyErrorCode;

  constructor(code: UpstreamKeyErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UpstreamKeyError';
    this.code = code;
  }
}

/** True when `value` is an upstream key error, optionally with the given code. */
export function isUpstreamKeyError(
  value: unknown,
  code?: UpstreamKeyErrorCode,
): value is UpstreamKeyError {
  if (!(value instanceof Error) || value.name !== 'UpstreamKeyError') return false;
  return code === undefined || (value as UpstreamKeyError).code === code;
}
