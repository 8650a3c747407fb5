import type { AuditEvent, AuditEventInput } from './event.js';

/**
 * Where audit events go. Every backend (SQLite, PostgreSQL, JSON lines) honours the same
 * promise: `record` resolves only once the event is durably stored, and rejects with an
 * AuditError otherwise. A sink never drops an event without a rejection and a log line.
 */
export interface AuditSink {
  /** Stores one event; resolves when it is durable. */
  record(event: AuditEventInput): Promise<void>;
  /** Resolves once every event recorded before the call is settled. */
  flush(): Promise<void>;
  /** Flushes, then releases the backend; later `record` calls reject with `audit_closed`. */
  close(): Promise<void>;
}

/** The log calls a sink makes (a pino logger fits); messages are fixed, values go in fields. */
export interface AuditLogger {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * One backend as the audit log drives it: events arrive already built (id and time assigned),
 * in batches, one batch at a time. A batch that resolves is durable; one that rejects may be
 * partly stored, so it is written again later with `replay`, and a writer that can tell (the
 * databases, by event id) skips the events it already holds.
 */
export interface EventWriter {
  /** Names the sink in logs, status and its spool file: `store` or `jsonl`. */
  readonly name: string;
  write(events: readonly AuditEvent[], options?: { replay?: boolean }): Promise<void>;
  close(): Promise<void>;
}
