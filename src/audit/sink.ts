import type { AuditEventInput } from './event.js';

/**
 * Where audit events go. Every backend (SQLite now; PostgreSQL and JSONL later) honours the same
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
