import type { PgMigration } from '../store/postgres.js';
import type { Checkpoint } from './checkpoint.js';
import type { AuditBodies, AuditGuardSummary } from './event.js';
import type { ChainedAuditEvent } from './trail.js';

/**
 * The PostgreSQL layout of the audit trail. Each writing process has a chain of its own
 * (`audit_chains`), so replicas never wait on one another's head row; an event is identified in
 * its chain by `(chain_id, seq)`. The head is updated in the same statement as the inserts, so
 * it always names the chain's last committed event.
 */
export const PG_AUDIT_MIGRATIONS: PgMigration[] = [
  {
    version: 1,
    up: `
      CREATE TABLE audit_chains (
        chain_id TEXT PRIMARY KEY,
        started_at TIMESTAMPTZ NOT NULL,
        host TEXT,
        pid INTEGER,
        head_seq BIGINT NOT NULL,
        head_hash TEXT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
      );
      CREATE TABLE audit_events (
        chain_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        id TEXT NOT NULL UNIQUE,
        time TIMESTAMPTZ NOT NULL,
        request_id TEXT NOT NULL,
        action TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        key_id TEXT,
        key_name TEXT,
        environment TEXT,
        model TEXT,
        stream BOOLEAN NOT NULL,
        prompt_tokens BIGINT,
        completion_tokens BIGINT,
        total_tokens BIGINT,
        success BOOLEAN NOT NULL,
        status INTEGER NOT NULL,
        error_code TEXT,
        upstream_status INTEGER,
        client_ip TEXT,
        user_agent TEXT,
        latency_ms DOUBLE PRECISION NOT NULL,
        guard JSONB,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (chain_id, seq)
      );
      CREATE INDEX audit_events_time ON audit_events (time, id);
      CREATE INDEX audit_events_key ON audit_events (key_id, time);
      CREATE TABLE audit_checkpoints (
        chain_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL,
        time TIMESTAMPTZ NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('periodic', 'prune')),
        signature TEXT,
        PRIMARY KEY (chain_id, seq, kind)
      );
    `,
  },
  {
    // Request and answer bodies, stored only by opt-in and only after redaction.
    version: 2,
    up: 'ALTER TABLE audit_events ADD COLUMN bodies TEXT;',
  },
];

/** The event columns and their types, in insert order. */
export const PG_EVENT_COLUMNS = [
  ['seq', 'bigint'],
  ['id', 'text'],
  ['time', 'timestamptz'],
  ['request_id', 'text'],
  ['action', 'text'],
  ['method', 'text'],
  ['path', 'text'],
  ['key_id', 'text'],
  ['key_name', 'text'],
  ['environment', 'text'],
  ['model', 'text'],
  ['stream', 'boolean'],
  ['prompt_tokens', 'bigint'],
  ['completion_tokens', 'bigint'],
  ['total_tokens', 'bigint'],
  ['success', 'boolean'],
  ['status', 'integer'],
  ['error_code', 'text'],
  ['upstream_status', 'integer'],
  ['client_ip', 'text'],
  ['user_agent', 'text'],
  ['latency_ms', 'float8'],
  ['guard', 'jsonb'],
  ['prev_hash', 'text'],
  ['hash', 'text'],
  ['bodies', 'text'],
] as const;

/** One `audit_events` row as pg returns it (int8 parsed to numbers by our pool). */
export interface PgAuditRow {
  chain_id: string;
  seq: number;
  id: string;
  time: Date;
  request_id: string;
  action: string;
  method: string;
  path: string;
  key_id: string | null;
  key_name: string | null;
  environment: string | null;
  model: string | null;
  stream: boolean;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
  success: boolean;
  status: number;
  error_code: string | null;
  upstream_status: number | null;
  client_ip: string | null;
  user_agent: string | null;
  latency_ms: number;
  guard: AuditGuardSummary | null;
  prev_hash: string;
  hash: string;
  bodies: string | null;
}

/** Maps a row back to the event exactly as it was hashed, plus its chain. */
export function fromPgRow(row: PgAuditRow): ChainedAuditEvent {
  return {
    id: row.id,
    time: row.time.toISOString(),
    requestId: row.request_id,
    action: row.action,
    method: row.method,
    path: row.path,
    keyId: row.key_id,
    keyName: row.key_name,
    environment: row.environment,
    model: row.model,
    stream: row.stream,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    totalTokens: row.total_tokens,
    success: row.success,
    status: row.status,
    errorCode: row.error_code,
    upstreamStatus: row.upstream_status,
    clientIp: row.client_ip,
    userAgent: row.user_agent,
    latencyMs: row.latency_ms,
    guard: row.guard,
    ...(row.bodies ? { bodies: JSON.parse(row.bodies) as AuditBodies } : {}),
    seq: row.seq,
    prevHash: row.prev_hash,
    hash: row.hash,
    chainId: row.chain_id,
  };
}

/** One `audit_checkpoints` row as pg returns it. */
export interface PgCheckpointRow {
  chain_id: string;
  seq: number;
  hash: string;
  time: Date;
  kind: Checkpoint['kind'];
  signature: string | null;
}

export function checkpointFromPgRow(row: PgCheckpointRow): Checkpoint {
  return {
    chainId: row.chain_id,
    seq: row.seq,
    hash: row.hash,
    time: row.time.toISOString(),
    kind: row.kind,
    signature: row.signature,
  };
}

export const INSERT_PG_CHECKPOINT = `
  INSERT INTO audit_checkpoints (chain_id, seq, hash, time, kind, signature)
  VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`;

/** The parameters of `INSERT_PG_CHECKPOINT`. */
export function checkpointParams(c: Checkpoint): unknown[] {
  return [c.chainId, c.seq, c.hash, c.time, c.kind, c.signature];
}
