/**
 * Failures of the audit trail. They stay apart from the request error catalogue because no client
 * ever sees them: the gateway turns any of them into its generic 500 and logs the code. Codes are
 * stable; match by `code`, never by class identity.
 */

/** Why an audit operation failed. */
export type AuditErrorCode =
  /** The writer could not commit the batch holding the event (lock timeout, disk full, ...). */
  | 'audit_write_failed'
  /** The writer thread died while the event was on its way; it is restarted. */
  | 'audit_worker_crashed'
  /** The writer cannot start, so nothing can be recorded until a restart succeeds. */
  | 'audit_unavailable'
  /** The sink was closed before the event was handed to it. */
  | 'audit_closed'
  /** There is no audit store to read: the data directory or its database does not exist. */
  | 'audit_store_missing'
  /** A sink is down and its spool file has reached its size limit: the event was refused. */
  | 'audit_spool_full'
  /** A sink is down and its spool file cannot be written either (disk full, permissions). */
  | 'audit_spool_failed';

/** An audit failure with a stable code; `cause` carries the internal detail for the log. */
export class AuditError extends Error {
  readonly code: AuditErrorCode;

  constructor(code: AuditErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AuditError';
    this.code = code;
  }
}

/** True when `value` is an audit error, optionally with the given code. */
export function isAuditError(value: unknown, code?: AuditErrorCode): value is AuditError {
  if (!(value instanceof Error) || value.name !== 'AuditError') return false;
  return code === undefined || (value as AuditError).code === code;
}
