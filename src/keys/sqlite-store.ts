import { join } from 'node:path';
import {
  type Migration,
  migrate,
  openSqlite,
  SQLITE_FILE,
  type SqliteDatabase,
} from '../store/sqlite.js';
import { encodeJson, INSERT_COLUMNS, insertValues, newKeyRecord, patchColumns } from './record.js';
import type {
  ChangeFeed,
  CreateKeyInput,
  KeyGuard,
  KeyPatch,
  KeyStore,
  VirtualKeyRecord,
} from './types.js';

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    up: `
      CREATE TABLE virtual_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        environment TEXT NOT NULL,
        models TEXT,
        max_tokens INTEGER,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        revoked_at TEXT,
        rotated_at TEXT,
        replaced_by TEXT,
        grace_until TEXT,
        limits TEXT,
        metadata TEXT NOT NULL DEFAULT '{}'
      ) STRICT;
      CREATE UNIQUE INDEX virtual_keys_hash ON virtual_keys (hash);
      CREATE TABLE virtual_keys_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
      ) STRICT;
      INSERT INTO virtual_keys_version (id, version) VALUES (1, 0);
      CREATE TRIGGER virtual_keys_inserted AFTER INSERT ON virtual_keys
        BEGIN UPDATE virtual_keys_version SET version = version + 1; END;
      CREATE TRIGGER virtual_keys_updated AFTER UPDATE ON virtual_keys
        BEGIN UPDATE virtual_keys_version SET version = version + 1; END;
      CREATE TRIGGER virtual_keys_deleted AFTER DELETE ON virtual_keys
        BEGIN UPDATE virtual_keys_version SET version = version + 1; END;
    `,
  },
  {
    // Limits move from a JSON column to one column each, so that SQLite itself refuses a zero
    // or negative limit. Values the old column held that are not positive integers are
    // dropped: the key then falls back to its profile's limit, never to none.
    version: 2,
    up: `
      ALTER TABLE virtual_keys ADD COLUMN rpm INTEGER CHECK (rpm > 0);
      ALTER TABLE virtual_keys ADD COLUMN tpm INTEGER CHECK (tpm > 0);
      ALTER TABLE virtual_keys ADD COLUMN concurrency INTEGER CHECK (concurrency > 0);
      ALTER TABLE virtual_keys ADD COLUMN daily_tokens INTEGER CHECK (daily_tokens > 0);
      ALTER TABLE virtual_keys ADD COLUMN monthly_tokens INTEGER CHECK (monthly_tokens > 0);
      UPDATE virtual_keys SET
        rpm = ${fromJson('rpm')},
        tpm = ${fromJson('tpm')},
        concurrency = ${fromJson('concurrency')},
        daily_tokens = ${fromJson('dailyTokens')},
        monthly_tokens = ${fromJson('monthlyTokens')}
      WHERE limits IS NOT NULL AND json_valid(limits);
      ALTER TABLE virtual_keys DROP COLUMN limits;
    `,
  },
  {
    // A key's own guard rules, as JSON; keys created before it have none.
    version: 3,
    up: `ALTER TABLE virtual_keys ADD COLUMN guard TEXT CHECK (guard IS NULL OR json_valid(guard));`,
  },
];

/** SQL reading one limit out of the old JSON column, or NULL when it is not a usable limit. */
function fromJson(field: string): string {
  const value = `json_extract(limits, '$.${field}')`;
  return `CASE WHEN json_type(limits, '$.${field}') = 'integer' AND ${value} > 0 THEN ${value} END`;
}

interface Row {
  id: string;
  name: string;
  hash: string;
  environment: string;
  models: string | null;
  max_tokens: number | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  rotated_at: string | null;
  replaced_by: string | null;
  grace_until: string | null;
  rpm: number | null;
  tpm: number | null;
  concurrency: number | null;
  daily_tokens: number | null;
  monthly_tokens: number | null;
  guard: string | null;
  metadata: string;
}

function fromRow(row: Row): VirtualKeyRecord {
  return {
    id: row.id,
    name: row.name,
    hash: row.hash,
    environment: row.environment,
    models: row.models === null ? null : (JSON.parse(row.models) as string[]),
    maxTokens: row.max_tokens,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    rotatedAt: row.rotated_at,
    replacedBy: row.replaced_by,
    graceUntil: row.grace_until,
    limits: {
      rpm: row.rpm,
      tpm: row.tpm,
      concurrency: row.concurrency,
      dailyTokens: row.daily_tokens,
      monthlyTokens: row.monthly_tokens,
    },
    guard: row.guard === null ? null : (JSON.parse(row.guard) as KeyGuard),
    metadata: JSON.parse(row.metadata) as Record<string, string>,
  };
}

export { newKeyId } from './record.js';

const INSERT_SQL = `INSERT INTO virtual_keys (${INSERT_COLUMNS.map((c) => c.name).join(', ')})
  VALUES (${INSERT_COLUMNS.map(() => '?').join(', ')})`;

/**
 * The key store on the embedded SQLite database. better-sqlite3 is synchronous, so each method
 * does its work at once and returns a settled promise.
 */
export class SqliteKeyStore implements KeyStore {
  readonly #db: SqliteDatabase;
  readonly #ownsDb: boolean;
  readonly #byHash;
  readonly #byId;
  readonly #dataVersion;
  readonly #keysVersion;
  // Commits on this connection leave its own data_version alone, so they are counted here.
  #writes = 0;

  /** Wraps an open database; with `ownsDb`, `close()` closes it too. */
  constructor(db: SqliteDatabase, options: { ownsDb?: boolean } = {}) {
    this.#db = db;
    this.#ownsDb = options.ownsDb ?? false;
    migrate(db, 'keys', MIGRATIONS);
    this.#byHash = db.prepare<[string], Row>('SELECT * FROM virtual_keys WHERE hash = ?');
    this.#byId = db.prepare<[string], Row>('SELECT * FROM virtual_keys WHERE id = ?');
    this.#dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.#keysVersion = db
      .prepare<[], number>('SELECT version FROM virtual_keys_version WHERE id = 1')
      .pluck();
  }

  async create(input: CreateKeyInput): Promise<{ record: VirtualKeyRecord; key: string }> {
    const { record, key } = newKeyRecord(input);
    this.#db.prepare(INSERT_SQL).run(...insertValues(record));
    this.#writes++;
    return { record, key };
  }

  async findByHash(hash: string): Promise<VirtualKeyRecord | null> {
    const row = this.#byHash.get(hash);
    return row ? fromRow(row) : null;
  }

  async get(id: string): Promise<VirtualKeyRecord | null> {
    const row = this.#byId.get(id);
    return row ? fromRow(row) : null;
  }

  async list(options: { includeRevoked?: boolean } = {}): Promise<VirtualKeyRecord[]> {
    const where = options.includeRevoked ? '' : 'WHERE revoked_at IS NULL';
    const rows = this.#db
      .prepare<[], Row>(`SELECT * FROM virtual_keys ${where} ORDER BY created_at, id`)
      .all();
    return rows.map(fromRow);
  }

  async revoke(id: string, now: Date = new Date()): Promise<VirtualKeyRecord | null> {
    this.#db
      .prepare('UPDATE virtual_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(now.toISOString(), id);
    this.#writes++;
    return this.get(id);
  }

  /**
   * Changes the fields given; an undefined field stays as it is. Limits change one by one:
   * `{ limits: { rpm: 10 } }` leaves the key's other limits alone.
   */
  async update(id: string, patch: KeyPatch): Promise<VirtualKeyRecord | null> {
    const sets = patchColumns(patch, encodeJson);
    if (sets.length > 0) {
      const assignments = sets.map(([column]) => `${column} = ?`).join(', ');
      this.#db
        .prepare(`UPDATE virtual_keys SET ${assignments} WHERE id = ?`)
        .run(...sets.map(([, value]) => value), id);
      this.#writes++;
    }
    return this.get(id);
  }

  async close(): Promise<void> {
    if (this.#ownsDb && this.#db.open) this.#db.close();
  }

  /**
   * A ChangeFeed for the authenticator's cache: true when the keys table changed since the
   * previous call, through any connection, in this process or another.
   *
   * `PRAGMA data_version` moves when another connection commits; reading it takes and drops a
   * shared lock on the file (two `fcntl` and an `fstat`). The file may be shared with other
   * stores, so a move only prompts a read of `virtual_keys_version`, which triggers bump on any
   * change to the keys: unrelated commits keep the cache.
   * Writes to the keys through this store's own connection must go through this store.
   */
  changes(): ChangeFeed {
    let seenData = this.#dataVersion.get();
    let seenWrites = this.#writes;
    let seenKeys = this.#keysVersion.get();
    // The version is read once per turn of the event loop. A request is read in the poll phase
    // of some turn, after the client sent it; a commit that ended before the client sent it
    // ended before that phase began, so the first read of the turn, which every request of the
    // turn shares, sees it. Under load that is one read (three syscalls) for many requests.
    // (libuv polls twice in one turn only when over a thousand sockets are ready at once; a
    // request read by the second poll shares a read that may predate a commit of that turn.)
    let readThisTurn = false;
    const nextTurn = () => {
      readThisTurn = false;
    };
    return () => {
      const writes = this.#writes;
      if (readThisTurn && writes === seenWrites) return false;
      if (!readThisTurn) {
        readThisTurn = true;
        setImmediate(nextTurn);
      }
      const data = this.#dataVersion.get();
      if (data === seenData && writes === seenWrites) return false;
      seenData = data;
      seenWrites = writes;
      const keys = this.#keysVersion.get();
      if (keys === seenKeys) return false;
      seenKeys = keys;
      return true;
    };
  }
}

/** Opens the key store in the shared database file under `dataDir`. */
export function openSqliteKeyStore(dataDir: string): SqliteKeyStore {
  return new SqliteKeyStore(openSqlite(join(dataDir, SQLITE_FILE)), { ownsDb: true });
}
