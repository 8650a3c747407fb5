import { join } from 'node:path';
import { type AuditLog, createAuditLog } from '../audit/audit-log.js';
import type { CheckpointPolicy } from '../audit/checkpoint.js';
import { openJsonlWriter } from '../audit/jsonl-sink.js';
import { openPostgresAuditWriter } from '../audit/postgres-sink.js';
import { openPostgresTrail } from '../audit/postgres-trail.js';
import type { AuditLogger, EventWriter } from '../audit/sink.js';
import { openAuditLog, sqliteEventWriter } from '../audit/sqlite-sink.js';
import { openSqliteTrail } from '../audit/sqlite-trail.js';
import type { AuditTrail, PruneResult } from '../audit/trail.js';
import type { Config } from '../config/load.js';
import { openPostgresKeyStore } from '../keys/postgres-store.js';
import { openSqliteKeyStore } from '../keys/sqlite-store.js';
import type { ChangeFeed, KeyStore } from '../keys/types.js';
import { openPostgres, type PgDatabase } from './postgres.js';

/** A key store that can tell an authenticator when keys changed elsewhere. */
export type WatchedKeyStore = KeyStore & { changes(): ChangeFeed };

/** Everything the gateway (or a CLI command) persists to, opened from one configuration. */
export interface Stores {
  backend: 'sqlite' | 'postgres';
  /** Virtual keys; pass `keys.changes()` to `createAuthenticator`. */
  keys: WatchedKeyStore;
  /** The audit log over every configured sink; null when `audit.enabled` is false. */
  audit: AuditLog | null;
  /** Resolves when the key store answers; rejects otherwise (for /readyz). */
  ping(): Promise<void>;
  /** Removes audit events older than `audit.retentionDays`; null when retention is off. */
  prune(): Promise<PruneResult | null>;
  /** Flushes the audit log, then closes every store and connection. */
  close(): Promise<void>;
}

/** Options of `openStores`. */
export interface OpenStoresOptions {
  logger?: AuditLogger;
  /**
   * Listen for key changes made by other processes (the gateway wants this; a one-shot CLI
   * command does not). Default true.
   */
  watchKeys?: boolean;
  /** Prune by `audit.retentionDays` now and every `pruneEveryMs`. Default true. */
  prune?: boolean;
  /** Between two prunes. Default one hour. */
  pruneEveryMs?: number;
}

const DAY_MS = 86_400_000;

/** Where each sink's spool lives: local to the process, whichever database holds the trail. */
export function spoolDir(config: Config): string {
  return join(config.dataDir, 'audit-spool');
}

function pgOptions(config: Config) {
  return {
    url: config.store.databaseUrl!.reveal(),
    schema: config.store.schema,
    max: config.store.poolSize,
  };
}

function checkpointPolicy(config: Config): CheckpointPolicy {
  return { every: config.audit.checkpointEvery, ms: config.audit.checkpointSeconds * 1000 };
}

/**
 * Opens the stores the configuration names: SQLite files under `dataDir`, or PostgreSQL when
 * `store.databaseUrl` is set. Schemas are created and migrated here, so a bad URL or an
 * unreachable server fails at start. With `audit.retentionDays`, old events are pruned now and
 * every hour, in the background.
 *
 * @example
 * const stores = await openStores(config, { logger });
 * const auth = createAuthenticator({ store: stores.keys, changes: stores.keys.changes() });
 * await stores.audit?.record(event);
 * if (stores.audit?.spoolFull()) reply.code(503); // readiness
 * await stores.close();
 */
export async function openStores(config: Config, options: OpenStoresOptions = {}): Promise<Stores> {
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
  };
  try {
    const db = config.store.databaseUrl ? await openPostgres(pgOptions(config)) : null;
    if (db) closers.push(() => db.close());
    const keys = await openKeys(config, db, options.watchKeys !== false);
    closers.push(() => keys.close());

    const audit = config.audit.enabled ? await openAudit(config, db, options.logger) : null;
    if (audit) closers.push(() => audit.close());

    const pruner = await startPruner(config, db, options);
    if (pruner) closers.push(pruner.stop);
    return {
      backend: db ? 'postgres' : 'sqlite',
      keys,
      audit,
      async ping() {
        await keys.get('key_ping');
      },
      prune: async () => (pruner ? pruner.run() : null),
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function openKeys(
  config: Config,
  db: PgDatabase | null,
  watch: boolean,
): Promise<WatchedKeyStore> {
  if (!db) return openSqliteKeyStore(config.dataDir);
  const keys = await openPostgresKeyStore(db);
  if (!watch) return keys;
  try {
    await keys.watch();
  } catch (error) {
    await keys.close();
    throw error;
  }
  return keys;
}

async function openAudit(
  config: Config,
  db: PgDatabase | null,
  logger: AuditLogger | undefined,
  onClose?: () => Promise<void>,
): Promise<AuditLog> {
  const hmacKey = config.audit.hmacKey?.reveal() ?? null;
  const checkpoints = checkpointPolicy(config);
  const writers: EventWriter[] = [];
  try {
    for (const sink of config.audit.sinks) {
      if (sink === 'jsonl') {
        writers.push(
          await openJsonlWriter(config.audit.jsonlPath ?? join(config.dataDir, 'audit.jsonl')),
        );
      } else if (db) {
        writers.push(await openPostgresAuditWriter(db, { hmacKey, checkpoints, logger }));
      } else {
        const sqlite = await openAuditLog(config.dataDir, { hmacKey, checkpoints, logger });
        writers.push(sqliteEventWriter(sqlite));
      }
    }
    return await createAuditLog(writers, {
      spoolDir: spoolDir(config),
      spoolMaxBytes: config.audit.spoolMaxBytes,
      batchSize: config.audit.batchSize,
      maxQueue: config.audit.maxQueue,
      logger,
      onClose,
    });
  } catch (error) {
    for (const writer of writers) await writer.close().catch(() => {});
    throw error;
  }
}

async function startPruner(
  config: Config,
  db: PgDatabase | null,
  options: OpenStoresOptions,
): Promise<{ run(): Promise<PruneResult>; stop(): Promise<void> } | null> {
  const days = config.audit.retentionDays;
  if (!config.audit.enabled || days === null) return null;
  const trail = db ? await openPostgresTrail(db) : openSqliteTrail(config.dataDir, { write: true });
  const hmacKey = config.audit.hmacKey?.reveal() ?? null;
  let running: Promise<PruneResult> | null = null;
  const run = () => {
    running ??= trail.prune(new Date(Date.now() - days * DAY_MS), hmacKey).finally(() => {
      running = null;
    });
    return running;
  };
  const tick = () => {
    run().catch((error) => options.logger?.error({ err: error }, 'audit prune failed'));
  };
  let timer: NodeJS.Timeout | null = null;
  if (options.prune !== false) {
    setImmediate(tick);
    timer = setInterval(tick, options.pruneEveryMs ?? 3_600_000);
    timer.unref();
  }
  return {
    run,
    async stop() {
      if (timer) clearInterval(timer);
      await running?.catch(() => {});
      await trail.close();
    },
  };
}

/**
 * The audit log alone, for CLI commands that record admin actions: the configured sinks, with
 * a chain of its own on PostgreSQL. Null when `audit.enabled` is false. Closing it closes the
 * connections it opened.
 */
export async function openAuditSinks(
  config: Config,
  options: { logger?: AuditLogger } = {},
): Promise<AuditLog | null> {
  if (!config.audit.enabled) return null;
  const db = config.store.databaseUrl ? await openPostgres({ ...pgOptions(config), max: 2 }) : null;
  try {
    return await openAudit(config, db, options.logger, db ? () => db.close() : undefined);
  } catch (error) {
    await db?.close();
    throw error;
  }
}

/**
 * The key store alone, for CLI commands: PostgreSQL when configured (closing it closes the
 * pool), else the SQLite file under `dataDir`. No change listener is started.
 */
export async function openKeyStore(config: Config): Promise<KeyStore> {
  if (!config.store.databaseUrl) return openSqliteKeyStore(config.dataDir);
  const db = await openPostgres({ ...pgOptions(config), max: 2 });
  try {
    return await openPostgresKeyStore(db, { ownsDb: true });
  } catch (error) {
    await db.close();
    throw error;
  }
}

/**
 * The stored audit trail, for reading (`audit query`, `verify`, ...) or, with `write`, pruning.
 * Reading SQLite never creates a file: a missing store fails with `audit_store_missing`.
 */
export async function openAuditTrail(
  config: Config,
  options: { write?: boolean } = {},
): Promise<AuditTrail> {
  if (!config.store.databaseUrl) return openSqliteTrail(config.dataDir, options);
  const db = await openPostgres({ ...pgOptions(config), max: 2 });
  try {
    return await openPostgresTrail(db, { ownsDb: true });
  } catch (error) {
    await db.close();
    throw error;
  }
}
