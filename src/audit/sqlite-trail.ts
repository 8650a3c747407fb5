import { join } from 'node:path';
import { AUDIT_SQLITE_FILE, migrate, openSqlite, type SqliteDatabase } from '../store/sqlite.js';
import { type Checkpoint, makeCheckpoint, SQLITE_CHAIN_ID } from './checkpoint.js';
import { openReader } from './reader.js';
import {
  AUDIT_MIGRATIONS,
  type AuditRow,
  fromRow,
  type StoredAuditEvent,
} from './sqlite-schema.js';
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

const SQLITE: Dialect = { param: () => '?', bool: (value) => (value ? 1 : 0) };
const DELETE_CHUNK = 5000;

function chained(row: AuditRow): ChainedAuditEvent {
  return { ...fromRow(row), chainId: SQLITE_CHAIN_ID };
}

const yieldTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * The embedded trail read through one connection. Read-only unless opened for pruning; a file
 * from before checkpoints existed reads as a trail without checkpoints.
 */
class SqliteTrail implements AuditTrail {
  readonly backend = 'sqlite';
  readonly #db: SqliteDatabase | null;

  constructor(db: SqliteDatabase | null) {
    this.#db = db;
  }

  async heads(): Promise<ChainHead[]> {
    if (!this.#db) return [];
    const head = this.#db.prepare('SELECT seq, hash FROM audit_chain_head WHERE id = 1').get() as
      | { seq: number; hash: string }
      | undefined;
    if (head) return [{ chainId: SQLITE_CHAIN_ID, ...head }];
    // A trail whose head row is gone is not an empty trail: its events still need a verdict.
    const any =
      this.#db.prepare('SELECT 1 FROM audit_events LIMIT 1').get() ??
      this.#db.prepare('SELECT 1 FROM audit_checkpoints LIMIT 1').get();
    return any
      ? ([{ chainId: SQLITE_CHAIN_ID, seq: null, hash: null }] as unknown as ChainHead[])
      : [];
  }

  async chainEvents(chainId: string, afterSeq: number, limit: number) {
    if (!this.#db || chainId !== SQLITE_CHAIN_ID) return [];
    const rows = this.#db
      .prepare('SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?')
      .all(afterSeq, limit) as AuditRow[];
    return rows.map(fromRow) as StoredAuditEvent[];
  }

  async checkpoints(chainId: string): Promise<Checkpoint[]> {
    if (!this.#db || !this.#hasCheckpoints()) return [];
    return this.#db
      .prepare(
        `SELECT chain_id AS chainId, seq, hash, time, kind, signature FROM audit_checkpoints
         WHERE chain_id = ? ORDER BY seq, kind`,
      )
      .all(chainId) as Checkpoint[];
  }

  async *events(filter: AuditFilter, options: { limit?: number } = {}) {
    if (!this.#db) return;
    let left = options.limit ?? Number.POSITIVE_INFINITY;
    let after: [string, string] | null = null;
    while (left > 0) {
      const where = whereOf(filter, SQLITE);
      const terms = where.sql ? [where.sql] : [];
      if (after) terms.push(`${where.sql ? 'AND' : 'WHERE'} (time, id) > (?, ?)`);
      const page = Math.min(PAGE_SIZE, left);
      const rows = this.#db
        .prepare(`SELECT * FROM audit_events ${terms.join(' ')} ORDER BY time, id LIMIT ?`)
        .all(...where.params, ...(after ?? []), page) as AuditRow[];
      for (const row of rows) yield chained(row);
      if (rows.length < page) return;
      const last = rows[rows.length - 1]!;
      after = [last.time, last.id];
      left -= rows.length;
    }
  }

  async latest(filter: AuditFilter, n: number): Promise<ChainedAuditEvent[]> {
    if (!this.#db) return [];
    const where = whereOf(filter, SQLITE);
    const rows = this.#db
      .prepare(`SELECT * FROM audit_events ${where.sql} ORDER BY seq DESC LIMIT ?`)
      .all(...where.params, Math.max(0, Math.trunc(n))) as AuditRow[];
    return rows.reverse().map(chained);
  }

  async stats(filter: AuditFilter): Promise<StatsRow[]> {
    if (!this.#db) return [];
    const where = whereOf(filter, SQLITE);
    return this.#db
      .prepare(
        `SELECT substr(time, 1, 10) AS day, key_id AS keyId, model, COUNT(*) AS requests,
          COALESCE(SUM(prompt_tokens), 0) AS promptTokens,
          COALESCE(SUM(completion_tokens), 0) AS completionTokens,
          COALESCE(SUM(total_tokens), 0) AS totalTokens,
          SUM(CASE WHEN success = 0 THEN 1 ELSE 0 END) AS errors,
          SUM(CASE WHEN error_code = 'sensitive_data_blocked'
            OR json_extract(guard, '$.action') LIKE '%block%' THEN 1 ELSE 0 END) AS blocks
         FROM audit_events ${where.sql}
         GROUP BY day, key_id, model ORDER BY day, key_id, model`,
      )
      .all(...where.params) as StatsRow[];
  }

  async prune(before: Date, hmacKey: string | null): Promise<PruneResult> {
    const cutoff = before.toISOString();
    const db = this.#db;
    if (!db) return { cutoff, deleted: 0, chains: 0 };
    // The checkpoint goes in first: until the rows below it are gone, verify skips them.
    const mark = db.transaction((): number | null => {
      const row = db
        .prepare(
          `SELECT seq, hash FROM audit_events WHERE seq = (
            SELECT MAX(seq) FROM audit_events WHERE time < ?)`,
        )
        .get(cutoff) as { seq: number; hash: string } | undefined;
      if (!row) return null;
      const checkpoint = makeCheckpoint({ chainId: SQLITE_CHAIN_ID, ...row }, 'prune', hmacKey);
      db.prepare(
        `INSERT OR REPLACE INTO audit_checkpoints (chain_id, seq, hash, time, kind, signature)
         VALUES (@chainId, @seq, @hash, @time, @kind, @signature)`,
      ).run(checkpoint);
      db.prepare(
        `DELETE FROM audit_checkpoints WHERE chain_id = ?
         AND (seq < ? OR (seq = ? AND kind = 'periodic'))`,
      ).run(SQLITE_CHAIN_ID, row.seq, row.seq);
      return row.seq;
    });
    const boundary = mark.immediate();
    if (boundary === null) return { cutoff, deleted: 0, chains: 0 };
    // Chunks keep each write lock short, so a gateway writing the file is never held up long.
    const chunk = db.prepare(
      'DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events WHERE seq <= ? LIMIT ?)',
    );
    let deleted = 0;
    for (;;) {
      const { changes } = chunk.run(boundary, DELETE_CHUNK);
      deleted += changes;
      if (changes < DELETE_CHUNK) break;
      await yieldTurn();
    }
    return { cutoff, deleted, chains: 1 };
  }

  async close(): Promise<void> {
    if (this.#db?.open) this.#db.close();
  }

  #hasCheckpoints(): boolean {
    return (
      this.#db
        ?.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_checkpoints'")
        .get() !== undefined
    );
  }
}

/**
 * Opens the embedded trail under `dataDir`. Readers (`write` false, the default) never create
 * anything and fail with `audit_store_missing` when there is no store; `write` opens it for
 * pruning, creating and migrating it as the writer would.
 */
export function openSqliteTrail(dataDir: string, options: { write?: boolean } = {}): AuditTrail {
  if (!options.write) return new SqliteTrail(openReader(dataDir));
  const db = openSqlite(join(dataDir, AUDIT_SQLITE_FILE));
  migrate(db, 'audit', AUDIT_MIGRATIONS);
  return new SqliteTrail(db);
}
