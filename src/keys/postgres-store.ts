import pg from 'pg';
import { migratePostgres, type PgDatabase, type PgMigration } from '../store/postgres.js';
import { encodeJson, INSERT_COLUMNS, insertValues, newKeyRecord, patchColumns } from './record.js';
import type {
  ChangeFeed,
  CreateKeyInput,
  KeyGuard,
  KeyPatch,
  KeyStore,
  VirtualKeyRecord,
} from './types.js';

/** The channel every key store announces its commits on; the payload names the schema. */
const CHANNEL = 'mistral_guard_keys';

const MIGRATIONS: PgMigration[] = [
  {
    version: 1,
    // Every statement that touches the keys bumps one counter and announces the new value, in
    // the same transaction: a NOTIFY is delivered only if the change commits, and after it.
    up: `
      CREATE TABLE virtual_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        environment TEXT NOT NULL,
        models JSONB,
        max_tokens INTEGER,
        created_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ,
        rotated_at TIMESTAMPTZ,
        replaced_by TEXT,
        grace_until TIMESTAMPTZ,
        rpm BIGINT CHECK (rpm > 0),
        tpm BIGINT CHECK (tpm > 0),
        concurrency BIGINT CHECK (concurrency > 0),
        daily_tokens BIGINT CHECK (daily_tokens > 0),
        monthly_tokens BIGINT CHECK (monthly_tokens > 0),
        metadata JSONB NOT NULL DEFAULT '{}'
      );
      CREATE INDEX virtual_keys_created ON virtual_keys (created_at, id);
      CREATE TABLE virtual_keys_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version BIGINT NOT NULL
      );
      INSERT INTO virtual_keys_version (id, version) VALUES (1, 0);
      CREATE FUNCTION virtual_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        next BIGINT;
      BEGIN
        UPDATE virtual_keys_version SET version = version + 1 WHERE id = 1
          RETURNING version INTO next;
        PERFORM pg_notify('${CHANNEL}', TG_TABLE_SCHEMA || ' ' || next);
        RETURN NULL;
      END
      $$;
      CREATE TRIGGER virtual_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
        ON virtual_keys FOR EACH STATEMENT EXECUTE FUNCTION virtual_keys_changed();
    `,
  },
  {
    // A key's own guard rules; keys created before it have none.
    version: 2,
    up: 'ALTER TABLE virtual_keys ADD COLUMN guard JSONB;',
  },
];

interface Row {
  id: string;
  name: string;
  hash: string;
  environment: string;
  models: string[] | null;
  max_tokens: number | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  rotated_at: Date | null;
  replaced_by: string | null;
  grace_until: Date | null;
  rpm: number | null;
  tpm: number | null;
  concurrency: number | null;
  daily_tokens: number | null;
  monthly_tokens: number | null;
  guard: KeyGuard | null;
  metadata: Record<string, string>;
}

function iso(value: Date | null): string | null {
  return value === null ? null : value.toISOString();
}

function fromRow(row: Row): VirtualKeyRecord {
  return {
    id: row.id,
    name: row.name,
    hash: row.hash,
    environment: row.environment,
    models: row.models,
    maxTokens: row.max_tokens,
    createdAt: row.created_at.toISOString(),
    expiresAt: iso(row.expires_at),
    revokedAt: iso(row.revoked_at),
    rotatedAt: iso(row.rotated_at),
    replacedBy: row.replaced_by,
    graceUntil: iso(row.grace_until),
    limits: {
      rpm: row.rpm,
      tpm: row.tpm,
      concurrency: row.concurrency,
      dailyTokens: row.daily_tokens,
      monthlyTokens: row.monthly_tokens,
    },
    guard: row.guard ?? null,
    metadata: row.metadata,
  };
}

// JSONB parameters go as text (pg would send a JS array as a PostgreSQL array), cast here.
const INSERT_SQL = `INSERT INTO virtual_keys (${INSERT_COLUMNS.map((c) => c.name).join(', ')})
  VALUES (${INSERT_COLUMNS.map((c, i) => `$${i + 1}${c.json ? '::jsonb' : ''}`).join(', ')})`;

/** Options of the PostgreSQL key store. */
export interface PostgresKeyStoreOptions {
  /** Close the pool with the store. Default false: the pool is shared with the audit trail. */
  ownsDb?: boolean;
  /** How often the change listener checks its connection and the counter. Default 5,000 ms. */
  heartbeatMs?: number;
}

const MAX_RECONNECT_MS = 5000;

/**
 * The key store on PostgreSQL, shared by every replica. Same contract and same records as the
 * SQLite store; timestamps are `timestamptz`, so a date that does not parse is refused on write
 * instead of being stored.
 */
export class PostgresKeyStore implements KeyStore {
  readonly #db: PgDatabase;
  readonly #ownsDb: boolean;
  readonly #heartbeatMs: number;
  // Change tracking, read by every feed on every request: plain numbers, no I/O.
  #version = 0;
  #epoch = 0;
  #writes = 0;
  #listening = false;
  #listener: pg.Client | null = null;
  #watching: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #retryMs = 0;
  #closed = false;

  /** Wraps an open, migrated database; prefer `openPostgresKeyStore`. */
  constructor(db: PgDatabase, options: PostgresKeyStoreOptions = {}) {
    this.#db = db;
    this.#ownsDb = options.ownsDb ?? false;
    this.#heartbeatMs = options.heartbeatMs ?? 5000;
  }

  async create(input: CreateKeyInput): Promise<{ record: VirtualKeyRecord; key: string }> {
    const { record, key } = newKeyRecord(input);
    await this.#db.pool.query(INSERT_SQL, insertValues(record));
    this.#writes++;
    return { record, key };
  }

  async findByHash(hash: string): Promise<VirtualKeyRecord | null> {
    return this.#one('SELECT * FROM virtual_keys WHERE hash = $1', [hash]);
  }

  async get(id: string): Promise<VirtualKeyRecord | null> {
    return this.#one('SELECT * FROM virtual_keys WHERE id = $1', [id]);
  }

  async list(options: { includeRevoked?: boolean } = {}): Promise<VirtualKeyRecord[]> {
    const where = options.includeRevoked ? '' : 'WHERE revoked_at IS NULL';
    const { rows } = await this.#db.pool.query<Row>(
      `SELECT * FROM virtual_keys ${where} ORDER BY created_at, id`,
    );
    return rows.map(fromRow);
  }

  async revoke(id: string, now: Date = new Date()): Promise<VirtualKeyRecord | null> {
    await this.#db.pool.query(
      'UPDATE virtual_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL',
      [now.toISOString(), id],
    );
    this.#writes++;
    return this.get(id);
  }

  /** Changes the fields given, as the SQLite store does; limits change one by one. */
  async update(id: string, patch: KeyPatch): Promise<VirtualKeyRecord | null> {
    const sets = patchColumns(patch, encodeJson);
    if (sets.length > 0) {
      const assignments = sets.map(([column], i) => {
        const cast =
          column === 'models' || column === 'guard' || column === 'metadata' ? '::jsonb' : '';
        return `${column} = $${i + 1}${cast}`;
      });
      await this.#db.pool.query(
        `UPDATE virtual_keys SET ${assignments.join(', ')} WHERE id = $${sets.length + 1}`,
        [...sets.map(([, value]) => value), id],
      );
      this.#writes++;
    }
    return this.get(id);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const listener = this.#listener;
    this.#listener = null;
    this.#listening = false;
    await listener?.end().catch(() => {});
    if (this.#ownsDb) await this.#db.close();
  }

  /**
   * Starts listening for key changes made anywhere (another replica, the CLI) and resolves once
   * the listener is connected, or rejects when it cannot connect. A later loss of the listener
   * is repaired in the background.
   */
  watch(): Promise<void> {
    this.#watching ??= this.#listen();
    return this.#watching;
  }

  /**
   * A ChangeFeed for the authenticator: true when the keys may have changed since the previous
   * call. Starts `watch()` if nobody did.
   *
   * Every write to `virtual_keys` bumps a counter row and sends a NOTIFY with the new value in
   * the same transaction; one connection per process LISTENs and keeps the highest value heard.
   * A call therefore compares three numbers in memory (no I/O, well under a microsecond), and a
   * change committed elsewhere is seen as soon as PostgreSQL delivers the notification, which
   * follows the commit within a network round trip. While the listener is down the feed says
   * "changed" on every call, so nothing stale is ever served: each request then reads the store.
   * A heartbeat on the listener's connection rereads the counter, so a connection that died
   * without an error is noticed, and a missed value is caught up, within `heartbeatMs`.
   */
  changes(): ChangeFeed {
    this.watch().catch(() => {});
    let seenVersion = this.#version;
    let seenEpoch = this.#epoch;
    let seenWrites = this.#writes;
    return () => {
      if (!this.#listening) return true;
      if (
        this.#version === seenVersion &&
        this.#epoch === seenEpoch &&
        this.#writes === seenWrites
      ) {
        return false;
      }
      seenVersion = this.#version;
      seenEpoch = this.#epoch;
      seenWrites = this.#writes;
      return true;
    };
  }

  async #one(sql: string, values: unknown[]): Promise<VirtualKeyRecord | null> {
    const { rows } = await this.#db.pool.query<Row>(sql, values);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ ...this.#db.clientConfig, keepAlive: true });
    client.on('error', () => this.#lost(client));
    client.on('end', () => this.#lost(client));
    client.on('notification', (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      const [schema, version] = message.payload.split(' ');
      if (schema === this.#db.schema) this.#heard(Number(version));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      await this.#readVersion(client);
    } catch (error) {
      client.end().catch(() => {});
      if (!this.#closed) this.#retryLater();
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#listener = client;
    // Whatever happened while nobody listened counts as a change.
    this.#epoch++;
    this.#listening = true;
    this.#retryMs = 0;
    this.#schedule(() => this.#heartbeat(client), this.#heartbeatMs);
  }

  #heard(version: number): void {
    if (Number.isSafeInteger(version) && version > this.#version) this.#version = version;
  }

  async #readVersion(client: pg.Client): Promise<void> {
    const { rows } = await client.query<{ version: number }>(
      'SELECT version FROM virtual_keys_version WHERE id = 1',
    );
    this.#heard(rows[0]?.version ?? 0);
  }

  async #heartbeat(client: pg.Client): Promise<void> {
    if (client !== this.#listener) return;
    const timeout = setTimeout(() => this.#lost(client), this.#heartbeatMs);
    try {
      await this.#readVersion(client);
      if (client === this.#listener) {
        this.#schedule(() => this.#heartbeat(client), this.#heartbeatMs);
      }
    } catch {
      this.#lost(client);
    } finally {
      clearTimeout(timeout);
    }
  }

  #lost(client: pg.Client): void {
    if (client !== this.#listener) return;
    this.#listener = null;
    this.#listening = false;
    client.end().catch(() => {});
    if (!this.#closed) this.#retryLater();
  }

  #retryLater(): void {
    this.#retryMs = Math.min(Math.max(this.#retryMs * 2, 100), MAX_RECONNECT_MS);
    this.#schedule(() => this.#listen(), this.#retryMs);
  }

  #schedule(run: () => Promise<void>, ms: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      run().catch(() => {});
    }, ms);
    this.#timer.unref();
  }
}

/**
 * Migrates the key tables in `db` and returns the store on it. The pool stays open when the
 * store closes unless `ownsDb` is set.
 *
 * @example
 * const db = await openPostgres({ url });
 * const keys = await openPostgresKeyStore(db);
 * await keys.watch();
 * const auth = createAuthenticator({ store: keys, changes: keys.changes() });
 */
export async function openPostgresKeyStore(
  db: PgDatabase,
  options: PostgresKeyStoreOptions = {},
): Promise<PostgresKeyStore> {
  await migratePostgres(db, 'keys', MIGRATIONS);
  return new PostgresKeyStore(db, options);
}
