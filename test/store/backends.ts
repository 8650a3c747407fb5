/**
 * The two store backends as test fixtures, so one suite runs against SQLite and PostgreSQL.
 * Each PostgreSQL test gets a schema of its own, dropped when the test ends.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { type Config, loadConfig } from '../../src/config/load.js';
import { AUDIT_SQLITE_FILE, SQLITE_FILE } from '../../src/store/sqlite.js';

const CANDIDATE_URLS = [
  process.env.MISTRAL_GUARD_TEST_DATABASE_URL,
  'postgres://root@127.0.0.1:5432/test',
  'postgres://postgres@127.0.0.1:5432/test',
].filter((url): url is string => Boolean(url));

/** The first URL a PostgreSQL answers on within a second, or null. */
async function findPostgres(): Promise<string | null> {
  for (const url of CANDIDATE_URLS) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return url;
    } catch {
      // Try the next one.
    } finally {
      await client.end().catch(() => {});
    }
  }
  return null;
}

/** The PostgreSQL URL the suites use; null when none answers (its suites are skipped). */
export const PG_URL = await findPostgres();

/** What a test needs from one backend. */
export interface BackendContext {
  name: 'sqlite' | 'postgres';
  dataDir: string;
  /** A resolved configuration pointing at this backend. */
  config: Config;
  /** Variables that point a CLI child process at this backend. */
  env: Record<string, string>;
  /** Runs raw SQL on the database holding `table` (`?` placeholders on both backends). */
  sql(
    table: 'keys' | 'audit',
    query: string,
    params?: unknown[],
  ): Promise<Array<Record<string, unknown>>>;
}

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** A reason to skip, or false. */
  skip: string | false;
  setup(t: TestContext, extra?: { env?: Record<string, string> }): Promise<BackendContext>;
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'mg-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function configFor(dataDir: string, env: Record<string, string>): Promise<Config> {
  return loadConfig({ cwd: dataDir, env, flags: { dataDir } });
}

const sqlite: Backend = {
  name: 'sqlite',
  skip: false,
  async setup(t, extra = {}) {
    const dataDir = tempDir(t);
    const env = { ...extra.env };
    return {
      name: 'sqlite',
      dataDir,
      config: await configFor(dataDir, env),
      env,
      async sql(table, query, params = []) {
        const db = new Database(join(dataDir, table === 'keys' ? SQLITE_FILE : AUDIT_SQLITE_FILE));
        try {
          const statement = db.prepare(query);
          if (statement.reader) return statement.all(...params) as Array<Record<string, unknown>>;
          statement.run(...params);
          return [];
        } finally {
          db.close();
        }
      },
    };
  },
};

/** `?` placeholders become `$1`, `$2`, ... */
function numbered(query: string): string {
  let n = 0;
  return query.replace(/\?/g, () => `$${++n}`);
}

const postgres: Backend = {
  name: 'postgres',
  skip: PG_URL ? false : 'no PostgreSQL on 127.0.0.1:5432',
  async setup(t, extra = {}) {
    const dataDir = tempDir(t);
    const schema = `mg_test_${randomBytes(6).toString('hex')}`;
    const url = PG_URL!;
    t.after(async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    });
    const env = {
      MISTRAL_GUARD_DATABASE_URL: url,
      MISTRAL_GUARD_DATABASE_SCHEMA: schema,
      ...extra.env,
    };
    return {
      name: 'postgres',
      dataDir,
      config: await configFor(dataDir, env),
      env,
      async sql(_table, query, params = []) {
        const client = new pg.Client({
          connectionString: url,
          options: `-c search_path=${schema}`,
        });
        await client.connect();
        try {
          return (await client.query(numbered(query), params)).rows;
        } finally {
          await client.end();
        }
      },
    };
  },
};

/** Both backends, SQLite first. */
export const BACKENDS: Backend[] = [sqlite, postgres];
