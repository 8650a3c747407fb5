import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

/** One schema step of one module; steps of a module run in order and each runs once. */
export interface Migration {
  version: number;
  up: string;
}

/** The embedded store of keys and other slowly changing state, under the data directory. */
export const SQLITE_FILE = 'mistral-guard.db';

/**
 * The embedded audit trail has a file of its own: it commits on every request, and sharing a
 * file would make every commit look like a possible key change to the key cache (which watches
 * the file's `data_version`) and make key writes queue behind audit batches.
 */
export const AUDIT_SQLITE_FILE = 'audit.db';

/**
 * Opens (and creates) the embedded database in WAL mode. WAL lets the CLI write keys while a
 * running gateway reads them, and lets the audit writer commit without blocking readers.
 */
export function openSqlite(path: string, options: { readonly?: boolean } = {}): SqliteDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path, { readonly: options.readonly ?? false });
  db.pragma('busy_timeout = 5000');
  if (!options.readonly) {
    // Two processes creating the file at once (replicas starting together) can meet here:
    // changing the journal mode does not wait on the busy timeout, so it is tried again.
    whileBusy(() => db.pragma('journal_mode = WAL'));
    // NORMAL in WAL mode survives a process crash (kill -9); only an OS crash can lose the
    // last transactions, which is the trade-off every WAL deployment makes.
    db.pragma('synchronous = NORMAL');
  }
  db.pragma('foreign_keys = ON');
  return db;
}

/**
 * Brings one module's tables up to its newest version. Each module keeps its own version line
 * in `schema_versions`, so modules evolve their tables independently.
 */
export function migrate(db: SqliteDatabase, module: string, migrations: Migration[]): void {
  const run = db.transaction(() => {
    const row = db.prepare('SELECT version FROM schema_versions WHERE module = ?').get(module) as
      | { version: number }
      | undefined;
    let current = row?.version ?? 0;
    for (const step of [...migrations].sort((a, b) => a.version - b.version)) {
      if (step.version <= current) continue;
      db.exec(step.up);
      current = step.version;
    }
    db.prepare(
      'INSERT INTO schema_versions (module, version) VALUES (?, ?) ' +
        'ON CONFLICT(module) DO UPDATE SET version = excluded.version',
    ).run(module, current);
  });
  whileBusy(() => {
    db.exec(
      'CREATE TABLE IF NOT EXISTS schema_versions (module TEXT PRIMARY KEY, version INTEGER NOT NULL)',
    );
    run.immediate();
  });
}

/** How long start-up steps keep trying while another process holds the database. */
const BUSY_RETRY_MS = 5000;

/**
 * Runs a start-up step again while SQLite answers SQLITE_BUSY, up to `BUSY_RETRY_MS`. Only for
 * opening and migrating: it sleeps the thread between tries.
 */
function whileBusy<T>(step: () => T): T {
  const deadline = Date.now() + BUSY_RETRY_MS;
  for (;;) {
    try {
      return step();
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      if (!code.startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10 + Math.random() * 40);
    }
  }
}
