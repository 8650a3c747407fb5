import type pg from 'pg';
import { migratePostgres, type PgDatabase, withConnection } from '../store/postgres.js';
import { type Checkpoint, makeCheckpoint } from './checkpoint.js';
import {
  checkpointFromPgRow,
  checkpointParams,
  fromPgRow,
  INSERT_PG_CHECKPOINT,
  PG_AUDIT_MIGRATIONS,
  type PgAuditRow,
  type PgCheckpointRow,
} from './postgres-schema.js';
import type { StoredAuditEvent } from './sqlite-schema.js';
import {
  type AuditFilter,
  type AuditTrail,
  type ChainedAuditEvent,
  type ChainHead,
  type Dialect,
  PAGE_SIZE,
  type PruneResult,
  type StatsRow,
  whereOf,
} from './trail.js';

const POSTGRES: Dialect = { param: (i) => `$${i}`, bool: (value) => value };
const DELETE_CHUNK = 10_000;

/** The trail on PostgreSQL: every replica's chain in one set of tables. */
class PostgresTrail implements AuditTrail {
  readonly backend = 'postgres';
  readonly #db: PgDatabase;
  readonly #ownsDb: boolean;

  constructor(db: PgDatabase, ownsDb: boolean) {
    this.#db = db;
    this.#ownsDb = ownsDb;
  }

  async heads() {
    const { rows } = await this.#db.pool.query<{
      chain_id: string;
      head_seq: number | null;
      head_hash: string | null;
    }>(
      `SELECT chain_id, head_seq, head_hash FROM audit_chains
       UNION ALL
       SELECT DISTINCT e.chain_id, NULL::bigint, NULL FROM audit_events e
         WHERE NOT EXISTS (SELECT 1 FROM audit_chains c WHERE c.chain_id = e.chain_id)
       ORDER BY chain_id`,
    );
    return rows.map((row) =>
      row.head_seq === null || row.head_hash === null
        ? { chainId: row.chain_id, seq: null, hash: null }
        : ({ chainId: row.chain_id, seq: row.head_seq, hash: row.head_hash } as ChainHead),
    );
  }

  async chainEvents(chainId: string, afterSeq: number, limit: number): Promise<StoredAuditEvent[]> {
    const { rows } = await this.#db.pool.query<PgAuditRow>(
      'SELECT * FROM audit_events WHERE chain_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
      [chainId, afterSeq, limit],
    );
    return rows.map(fromPgRow);
  }

  async checkpoints(chainId: string): Promise<Checkpoint[]> {
    const { rows } = await this.#db.pool.query<PgCheckpointRow>(
      'SELECT * FROM audit_checkpoints WHERE chain_id = $1 ORDER BY seq, kind',
      [chainId],
    );
    return rows.map(checkpointFromPgRow);
  }

  async *events(filter: AuditFilter, options: { limit?: number } = {}) {
    let left = options.limit ?? Number.POSITIVE_INFINITY;
    let after: [string, string] | null = null;
    while (left > 0) {
      const where = whereOf(filter, POSTGRES);
      const params = [...where.params];
      let sql = `SELECT * FROM audit_events ${where.sql}`;
      if (after) {
        params.push(...after);
        const [time, id] = [`$${params.length - 1}`, `$${params.length}`];
        sql += ` ${where.sql ? 'AND' : 'WHERE'} (time, id) > (${time}, ${id})`;
      }
      const page = Math.min(PAGE_SIZE, left);
      params.push(page);
      sql += ` ORDER BY time, id LIMIT $${params.length}`;
      const { rows } = await this.#db.pool.query<PgAuditRow>(sql, params);
      for (const row of rows) yield fromPgRow(row);
      if (rows.length < page) return;
      const last = rows[rows.length - 1]!;
      after = [last.time.toISOString(), last.id];
      left -= rows.length;
    }
  }

  async latest(filter: AuditFilter, n: number): Promise<ChainedAuditEvent[]> {
    const where = whereOf(filter, POSTGRES);
    const { rows } = await this.#db.pool.query<PgAuditRow>(
      `SELECT * FROM audit_events ${where.sql} ORDER BY time DESC, id DESC
       LIMIT $${where.params.length + 1}`,
      [...where.params, Math.max(0, Math.trunc(n))],
    );
    return rows.reverse().map(fromPgRow);
  }

  async stats(filter: AuditFilter): Promise<StatsRow[]> {
    const where = whereOf(filter, POSTGRES);
    const { rows } = await this.#db.pool.query<StatsRow>(
      `SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, key_id AS "keyId", model,
        COUNT(*) AS requests,
        COALESCE(SUM(prompt_tokens), 0) AS "promptTokens",
        COALESCE(SUM(completion_tokens), 0) AS "completionTokens",
        COALESCE(SUM(total_tokens), 0) AS "totalTokens",
        COUNT(*) FILTER (WHERE NOT success) AS errors,
        COUNT(*) FILTER (WHERE error_code = 'sensitive_data_blocked'
          OR guard->>'action' LIKE '%block%') AS blocks
       FROM audit_events ${where.sql}
       GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      where.params,
    );
    return rows;
  }

  /**
   * Prunes every chain. Replicas that prune at the same moment take turns on an advisory lock;
   * whoever comes second finds nothing left to do.
   */
  async prune(before: Date, hmacKey: string | null): Promise<PruneResult> {
    const cutoff = before.toISOString();
    return withConnection(this.#db, async (client) => {
      await client.query("SELECT pg_advisory_lock(hashtext('mistral-guard:prune'))");
      try {
        const { rows } = await client.query<{ chain_id: string; seq: number; hash: string }>(
          `SELECT e.chain_id, e.seq, e.hash FROM audit_events e
           JOIN (SELECT chain_id, MAX(seq) AS seq FROM audit_events WHERE time < $1
                 GROUP BY chain_id) last ON last.chain_id = e.chain_id AND last.seq = e.seq`,
          [cutoff],
        );
        let deleted = 0;
        for (const row of rows) {
          const head = { chainId: row.chain_id, seq: row.seq, hash: row.hash };
          const checkpoint = makeCheckpoint(head, 'prune', hmacKey);
          // The checkpoint goes in first: until the rows below it are gone, verify skips them.
          await client.query('BEGIN');
          await client.query(INSERT_PG_CHECKPOINT, checkpointParams(checkpoint));
          await client.query(
            `DELETE FROM audit_checkpoints WHERE chain_id = $1
             AND (seq < $2 OR (seq = $2 AND kind = 'periodic'))`,
            [row.chain_id, row.seq],
          );
          await client.query('COMMIT');
          deleted += await this.#deleteUpTo(client, row.chain_id, row.seq);
        }
        return { cutoff, deleted, chains: rows.length };
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtext('mistral-guard:prune'))");
      }
    });
  }

  async close(): Promise<void> {
    if (this.#ownsDb) await this.#db.close();
  }

  async #deleteUpTo(client: pg.PoolClient, chainId: string, seq: number): Promise<number> {
    let deleted = 0;
    for (;;) {
      const result = await client.query(
        `DELETE FROM audit_events WHERE chain_id = $1 AND seq IN (
          SELECT seq FROM audit_events WHERE chain_id = $1 AND seq <= $2 LIMIT $3)`,
        [chainId, seq, DELETE_CHUNK],
      );
      deleted += result.rowCount ?? 0;
      if ((result.rowCount ?? 0) < DELETE_CHUNK) return deleted;
    }
  }
}

/**
 * The PostgreSQL trail on `db`, migrated first so a reader of a fresh database sees an empty
 * trail rather than an error. With `ownsDb`, closing the trail closes `db`.
 */
export async function openPostgresTrail(
  db: PgDatabase,
  options: { ownsDb?: boolean } = {},
): Promise<AuditTrail> {
  await migratePostgres(db, 'audit', PG_AUDIT_MIGRATIONS);
  return new PostgresTrail(db, options.ownsDb ?? false);
}
