import pg from 'pg';

/** PostgreSQL type ids whose text form the default parsers turn into strings. */
const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * 64-bit integers (sequence numbers, token counts) arrive as numbers. Every value we store stays
 * below 2^53 (`toAuditRecord` caps counts at MAX_SAFE_INTEGER), so nothing is rounded. The
 * parsers are set on our pools only: pg's global table is left alone for other users in-process.
 */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** A schema name we accept: it is spliced into SQL and connection options, so it stays plain. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,39}$/;

/** How to reach PostgreSQL. */
export interface PostgresOptions {
  /** A `postgres://` URL; may carry a password, so it is never logged or printed. */
  url: string;
  /** The schema holding our tables; created when missing. Default `public`. */
  schema?: string;
  /** Most pooled connections. Default 10. */
  max?: number;
  /** How long a connection attempt may take. Default 5,000 ms. */
  connectTimeoutMs?: number;
}

/** One pool to PostgreSQL, with every connection's `search_path` set to our schema. */
export interface PgDatabase {
  readonly pool: pg.Pool;
  readonly schema: string;
  /** Settings to open a lone connection (LISTEN) the same way the pool opens its own. */
  readonly clientConfig: pg.ClientConfig;
  close(): Promise<void>;
}

/** One schema step of one module, as in the SQLite store; each step runs once, in order. */
export interface PgMigration {
  version: number;
  up: string;
}

/**
 * Opens a pool and makes sure the schema exists. Fails at once when the server cannot be
 * reached, so a wrong URL stops the gateway at start rather than at its first request. Errors
 * thrown here carry pg's message, which never includes the password.
 *
 * @example
 * const db = await openPostgres({ url: config.store.databaseUrl.reveal(), schema: 'guard' });
 * await migratePostgres(db, 'keys', KEY_MIGRATIONS);
 */
export async function openPostgres(options: PostgresOptions): Promise<PgDatabase> {
  const schema = options.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new TypeError('store.schema is not a plain schema name');
  const clientConfig: pg.ClientConfig = {
    connectionString: options.url,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    options: `-c search_path=${schema}`,
    types: TYPES,
    application_name: 'mistral-guard',
  };
  const pool = new pg.Pool({ ...clientConfig, max: options.max ?? 10 });
  // An idle connection that drops (server restart) emits here; without a listener the process
  // would exit. The next query gets a fresh connection, and its error is the one that counts.
  pool.on('error', () => {});
  try {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  } catch (error) {
    // Two replicas creating the schema at the same moment: the loser sees a duplicate.
    if (!isDuplicate(error)) {
      await pool.end();
      throw error;
    }
  }
  let closed: Promise<void> | null = null;
  return {
    pool,
    schema,
    clientConfig,
    close() {
      closed ??= pool.end();
      return closed;
    },
  };
}

function isDuplicate(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === '23505' || code === '42P06';
}

/**
 * Runs `run` on a connection of its own from the pool. While it is checked out, a connection
 * that drops emits its error on the client rather than on the pool, and an unheard error would
 * end the process: it is heard here, and the query in progress fails with it instead.
 */
export async function withConnection<T>(
  db: PgDatabase,
  run: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await db.pool.connect();
  const onError = () => {};
  client.on('error', onError);
  let broken: Error | undefined;
  try {
    return await run(client);
  } catch (error) {
    broken = error as Error;
    throw error;
  } finally {
    client.off('error', onError);
    // A connection that failed mid-query may be in any state: it is closed, not reused.
    client.release(broken);
  }
}

/**
 * Brings one module's tables up to its newest version, in one transaction. An advisory lock
 * keeps replicas that start together from running the same step twice; each module keeps its
 * own line in `schema_versions`, as in SQLite.
 */
export async function migratePostgres(
  db: PgDatabase,
  module: string,
  migrations: PgMigration[],
): Promise<void> {
  await withConnection(db, async (client) => {
    await client.query('BEGIN');
    await client.query("SELECT pg_advisory_xact_lock(hashtext('mistral-guard:migrate'))");
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_versions (
        module TEXT PRIMARY KEY, version INTEGER NOT NULL)`,
    );
    const row = await client.query<{ version: number }>(
      'SELECT version FROM schema_versions WHERE module = $1',
      [module],
    );
    let current = row.rows[0]?.version ?? 0;
    for (const step of [...migrations].sort((a, b) => a.version - b.version)) {
      if (step.version <= current) continue;
      await client.query(step.up);
      current = step.version;
    }
    await client.query(
      `INSERT INTO schema_versions (module, version) VALUES ($1, $2)
       ON CONFLICT (module) DO UPDATE SET version = excluded.version`,
      [module, current],
    );
    await client.query('COMMIT');
  });
}
