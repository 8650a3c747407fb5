import type { Migration } from '../store/sqlite.js';
import { GENESIS_HASH } from './chain.js';
import type { AuditBodies, AuditEvent, AuditGuardSummary } from './event.js';

/**
 * The SQLite layout of the audit trail, shared by the writer thread and the readers. One row per
 * event, one column per field, so queries filter without parsing JSON. `audit_chain_head` holds
 * the last sequence number and hash: writers read it inside their transaction, so several
 * gateways sharing one file still build one unbroken chain, and pruning old rows later cannot
 * make a sequence number come back.
 */
export const AUDIT_MIGRATIONS: Migration[] = [
  {
    version: 1,
    up: `
      CREATE TABLE audit_events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        time TEXT NOT NULL,
        request_id TEXT NOT NULL,
        action TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        key_id TEXT,
        key_name TEXT,
        environment TEXT,
        model TEXT,
        stream INTEGER NOT NULL,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        total_tokens INTEGER,
        success INTEGER NOT NULL,
        status INTEGER NOT NULL,
        error_code TEXT,
        upstream_status INTEGER,
        client_ip TEXT,
        user_agent TEXT,
        latency_ms REAL NOT NULL,
        guard TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      ) STRICT;
      CREATE TABLE audit_chain_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
      ) STRICT;
      INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, '${GENESIS_HASH}');
    `,
  },
  {
    // Checkpoints (see checkpoint.ts), and indexes for queries by time and by key.
    version: 2,
    up: `
      CREATE TABLE audit_checkpoints (
        chain_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        time TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('periodic', 'prune')),
        signature TEXT,
        PRIMARY KEY (chain_id, seq, kind)
      ) STRICT;
      CREATE INDEX audit_events_time ON audit_events (time, id);
      CREATE INDEX audit_events_key ON audit_events (key_id, time);
    `,
  },
  {
    // Request and answer bodies, stored only by opt-in and only after redaction.
    version: 3,
    up: 'ALTER TABLE audit_events ADD COLUMN bodies TEXT;',
  },
];

/** An event as stored: the event plus its place in the chain. */
export interface StoredAuditEvent extends AuditEvent {
  /** Position in the trail; strictly increasing, never reused. */
  seq: number;
  prevHash: string;
  hash: string;
}

/** One `audit_events` row as better-sqlite3 returns it. */
export interface AuditRow {
  seq: number;
  id: string;
  time: string;
  request_id: string;
  action: string;
  method: string;
  path: string;
  key_id: string | null;
  key_name: string | null;
  environment: string | null;
  model: string | null;
  stream: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
  success: number;
  status: number;
  error_code: string | null;
  upstream_status: number | null;
  client_ip: string | null;
  user_agent: string | null;
  latency_ms: number;
  guard: string | null;
  prev_hash: string;
  hash: string;
  bodies: string | null;
}

/**
 * The insert statement, parameters in the order of `rowValues`. An id already stored (an event
 * replayed from a spool after a commit that looked failed) inserts nothing.
 */
export const INSERT_EVENT = `
  INSERT INTO audit_events (
    seq, id, time, request_id, action, method, path, key_id, key_name, environment, model,
    stream, prompt_tokens, completion_tokens, total_tokens, success, status, error_code,
    upstream_status, client_ip, user_agent, latency_ms, guard, prev_hash, hash, bodies
  ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (id) DO NOTHING`;

/** An event's row values for `INSERT_EVENT`; booleans become 0/1, SQLite has no boolean type. */
export function rowValues(event: AuditEvent, seq: number, prevHash: string, hash: string) {
  return [
    seq,
    event.id,
    event.time,
    event.requestId,
    event.action,
    event.method,
    event.path,
    event.keyId,
    event.keyName,
    event.environment,
    event.model,
    event.stream ? 1 : 0,
    event.promptTokens,
    event.completionTokens,
    event.totalTokens,
    event.success ? 1 : 0,
    event.status,
    event.errorCode,
    event.upstreamStatus,
    event.clientIp,
    event.userAgent,
    event.latencyMs,
    event.guard === null ? null : JSON.stringify(event.guard),
    prevHash,
    hash,
    event.bodies ? JSON.stringify(event.bodies) : null,
  ];
}

/**
 * Maps a row back to the event exactly as it was hashed: `chainHash(prevHash, seq, event)` of
 * the result equals the stored `hash` for an untouched row.
 */
export function fromRow(row: AuditRow): StoredAuditEvent {
  return {
    id: row.id,
    time: row.time,
    requestId: row.request_id,
    action: row.action,
    method: row.method,
    path: row.path,
    keyId: row.key_id,
    keyName: row.key_name,
    environment: row.environment,
    model: row.model,
    stream: row.stream === 1,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    totalTokens: row.total_tokens,
    success: row.success === 1,
    status: row.status,
    errorCode: row.error_code,
    upstreamStatus: row.upstream_status,
    clientIp: row.client_ip,
    userAgent: row.user_agent,
    latencyMs: row.latency_ms,
    guard: row.guard === null ? null : (JSON.parse(row.guard) as AuditGuardSummary),
    ...(row.bodies ? { bodies: JSON.parse(row.bodies) as AuditBodies } : {}),
    seq: row.seq,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
