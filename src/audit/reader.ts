import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AUDIT_SQLITE_FILE, openSqlite, type SqliteDatabase } from '../store/sqlite.js';
import { AuditError } from './errors.js';
import { type AuditRow, fromRow, type StoredAuditEvent } from './sqlite-schema.js';

/**
 * Opens the audit store read-only. Nothing is created: a reader pointed at the wrong directory
 * gets an error naming it instead of an empty database left behind. Returns null when the file
 * exists but no gateway has written audit events to it yet.
 */
export function openReader(dataDir: string): SqliteDatabase | null {
  if (!existsSync(dataDir)) {
    throw new AuditError('audit_store_missing', `the data directory ${dataDir} does not exist`);
  }
  const path = join(dataDir, AUDIT_SQLITE_FILE);
  if (!existsSync(path)) {
    throw new AuditError('audit_store_missing', `there is no database in ${dataDir}`);
  }
  const db = openSqlite(path, { readonly: true });
  const table = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'")
    .get();
  if (table) return db;
  db.close();
  return null;
}

/** The newest `n` events of the trail, returned oldest first as a log reads. */
export function tailEvents(dataDir: string, n: number): StoredAuditEvent[] {
  const db = openReader(dataDir);
  if (!db) return [];
  try {
    const limit = Math.max(0, Math.trunc(n));
    const rows = db
      .prepare('SELECT * FROM audit_events ORDER BY seq DESC LIMIT ?')
      .all(limit) as AuditRow[];
    return rows.reverse().map(fromRow);
  } finally {
    db.close();
  }
}
