import { hostname } from 'node:os';
import type pg from 'pg';
import { migratePostgres, type PgDatabase, withConnection } from '../store/postgres.js';
import { chainHash, GENESIS_HASH } from './chain.js';
import { type CheckpointPolicy, DEFAULT_CHECKPOINTS, makeCheckpoint } from './checkpoint.js';
import { type AuditEvent, newEventId } from './event.js';
import {
  checkpointParams,
  INSERT_PG_CHECKPOINT,
  PG_AUDIT_MIGRATIONS,
  PG_EVENT_COLUMNS,
} from './postgres-schema.js';
import type { AuditLogger, EventWriter } from './sink.js';

/** Options of the PostgreSQL audit writer. */
export interface PostgresAuditWriterOptions {
  /** Signs checkpoints (HMAC-SHA256); without it they are written unsigned. */
  hmacKey?: string | null;
  /** When to take periodic checkpoints; default every 1,000 events or minute. */
  checkpoints?: CheckpointPolicy;
  logger?: AuditLogger;
  /**
   * Longest a batch may take. Past it the connection is dropped and the batch fails, so the
   * audit log spools it instead of keeping requests waiting on a server that stopped answering.
   * Default 5,000 ms.
   */
  writeTimeoutMs?: number;
}

const NAMES = PG_EVENT_COLUMNS.map(([name]) => name).join(', ');
const FIELDS = PG_EVENT_COLUMNS.map(([name, type]) => `${name} ${type}`).join(', ');

// One statement per batch, whatever its size: the rows travel as one JSON array, which the
// server parses in one pass (an array per column costs a parse per column on both sides), and
// the head moves in the same statement (a data-modifying CTE always runs): one round trip.
const INSERT_BATCH = `
  WITH inserted AS (
    INSERT INTO audit_events (chain_id, ${NAMES})
    SELECT $1, ${NAMES} FROM json_to_recordset($2::json) AS r(${FIELDS})
    RETURNING 1
  )
  UPDATE audit_chains SET head_seq = $3, head_hash = $4, updated_at = now()
  WHERE chain_id = $1`;

/** The rows of a batch as the JSON `INSERT_BATCH` reads, keyed by column. */
function rowsJson(rows: Array<{ event: AuditEvent; seq: number; prev: string; hash: string }>) {
  return JSON.stringify(
    rows.map(({ event: e, seq, prev, hash }) => ({
      seq,
      id: e.id,
      time: e.time,
      request_id: e.requestId,
      action: e.action,
      method: e.method,
      path: e.path,
      key_id: e.keyId,
      key_name: e.keyName,
      environment: e.environment,
      model: e.model,
      stream: e.stream,
      prompt_tokens: e.promptTokens,
      completion_tokens: e.completionTokens,
      total_tokens: e.totalTokens,
      success: e.success,
      status: e.status,
      error_code: e.errorCode,
      upstream_status: e.upstreamStatus,
      client_ip: e.clientIp,
      user_agent: e.userAgent,
      latency_ms: e.latencyMs,
      guard: e.guard,
      prev_hash: prev,
      hash,
      bodies: e.bodies ? JSON.stringify(e.bodies) : null,
    })),
  );
}

/**
 * The audit trail's writer on PostgreSQL: one hash chain per process, so replicas append in
 * parallel. The head is kept in memory between batches; after any failure it is read back from
 * `audit_chains`, since a batch whose reply was lost may have committed.
 */
export class PostgresAuditWriter implements EventWriter {
  readonly name = 'store';
  /** This process's chain: a UUIDv7, so chains sort by when they started. */
  readonly chainId: string;
  readonly #db: PgDatabase;
  readonly #key: string | null;
  readonly #policy: CheckpointPolicy;
  readonly #logger: AuditLogger | undefined;
  readonly #timeoutMs: number;
  #head: { seq: number; hash: string } | null = { seq: 0, hash: GENESIS_HASH };
  #tail: Promise<void> = Promise.resolve();
  #checkpointedSeq = 0;
  #checkpointedAt = Date.now();
  #timer: NodeJS.Timeout;

  /** Use `openPostgresAuditWriter`, which migrates and registers the chain first. */
  constructor(db: PgDatabase, chainId: string, options: PostgresAuditWriterOptions = {}) {
    this.#db = db;
    this.chainId = chainId;
    this.#key = options.hmacKey ?? null;
    this.#policy = options.checkpoints ?? DEFAULT_CHECKPOINTS;
    this.#logger = options.logger;
    this.#timeoutMs = options.writeTimeoutMs ?? 5000;
    // A quiet chain still gets its last events under a checkpoint within `ms`.
    this.#timer = setInterval(
      () => {
        this.#serial(() => this.#checkpointIfDue(false)).catch(() => {});
      },
      Math.min(this.#policy.ms, 60_000),
    );
    this.#timer.unref();
  }

  /** Commits the events in order at the end of this process's chain; one statement. */
  write(events: readonly AuditEvent[], options: { replay?: boolean } = {}): Promise<void> {
    return this.#serial(async () => {
      await this.#withClient((client) => this.#insert(client, events, options.replay === true));
      await this.#checkpointIfDue(false).catch((error) => {
        this.#logger?.warn({ err: error, chainId: this.chainId }, 'audit checkpoint failed');
      });
    });
  }

  /** Waits for writes in progress and checkpoints the chain's last event. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#serial(() => this.#checkpointIfDue(true)).catch((error) => {
      this.#logger?.warn({ err: error, chainId: this.chainId }, 'audit checkpoint failed');
    });
  }

  /** Runs one write or checkpoint at a time: the head must not be read by two at once. */
  #serial(run: () => Promise<void>): Promise<void> {
    const next = this.#tail.then(run);
    this.#tail = next.catch(() => {});
    return next;
  }

  async #withClient(run: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    await withConnection(this.#db, async (client) => {
      // Ending the connection is what makes a hung query fail: pg offers no other way out.
      const timer = setTimeout(() => {
        client.end().catch(() => {});
      }, this.#timeoutMs);
      try {
        await run(client);
      } finally {
        clearTimeout(timer);
      }
    });
  }

  async #insert(client: pg.PoolClient, events: readonly AuditEvent[], replay: boolean) {
    try {
      this.#head ??= await this.#readHead(client);
      let todo = events;
      if (replay) {
        const { rows } = await client.query<{ id: string }>(
          'SELECT id FROM audit_events WHERE id = ANY($1::text[])',
          [events.map((e) => e.id)],
        );
        const stored = new Set(rows.map((r) => r.id));
        todo = events.filter((e) => !stored.has(e.id));
      }
      if (todo.length === 0) return;
      let { seq, hash } = this.#head;
      const rows = todo.map((event) => {
        const prev = hash;
        seq++;
        hash = chainHash(prev, seq, event);
        return { event, seq, prev, hash };
      });
      // Named, so each connection parses and plans the statement once, not once per batch.
      await client.query({
        name: 'mg_audit_insert_batch',
        text: INSERT_BATCH,
        values: [this.chainId, rowsJson(rows), seq, hash],
      });
      this.#head = { seq, hash };
    } catch (error) {
      this.#head = null;
      throw error;
    }
  }

  async #readHead(client: pg.PoolClient): Promise<{ seq: number; hash: string }> {
    const { rows } = await client.query<{ head_seq: number; head_hash: string }>(
      'SELECT head_seq, head_hash FROM audit_chains WHERE chain_id = $1',
      [this.chainId],
    );
    if (!rows[0]) throw new Error('the audit chain of this process is not registered');
    return { seq: rows[0].head_seq, hash: rows[0].head_hash };
  }

  async #checkpointIfDue(force: boolean): Promise<void> {
    const head = this.#head;
    if (!head || head.seq <= this.#checkpointedSeq) return;
    const due =
      force ||
      head.seq - this.#checkpointedSeq >= this.#policy.every ||
      Date.now() - this.#checkpointedAt >= this.#policy.ms;
    if (!due) return;
    const checkpoint = makeCheckpoint({ chainId: this.chainId, ...head }, 'periodic', this.#key);
    await this.#db.pool.query(INSERT_PG_CHECKPOINT, checkpointParams(checkpoint));
    this.#checkpointedSeq = head.seq;
    this.#checkpointedAt = Date.now();
  }
}

/**
 * Migrates the audit tables in `db`, registers a new chain for this process and returns its
 * writer. The pool stays open when the writer closes.
 *
 * @example
 * const writer = await openPostgresAuditWriter(db, { hmacKey, logger });
 * await writer.write([toAuditRecord(input)]);
 */
export async function openPostgresAuditWriter(
  db: PgDatabase,
  options: PostgresAuditWriterOptions = {},
): Promise<PostgresAuditWriter> {
  await migratePostgres(db, 'audit', PG_AUDIT_MIGRATIONS);
  const chainId = newEventId();
  await db.pool.query(
    `INSERT INTO audit_chains (chain_id, started_at, host, pid, head_seq, head_hash, updated_at)
     VALUES ($1, now(), $2, $3, 0, $4, now())`,
    [chainId, hostname().slice(0, 255), process.pid, GENESIS_HASH],
  );
  return new PostgresAuditWriter(db, chainId, options);
}
