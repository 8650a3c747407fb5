/**
 * The audit writer thread. better-sqlite3 is synchronous, so commits run here, never on the
 * gateway's event loop. The thread owns one connection and commits each batch it receives in one
 * IMMEDIATE transaction: the write lock is taken up front, so a busy file fails or waits at BEGIN
 * rather than half-way through the batch.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { migrate, openSqlite } from '../store/sqlite.js';
import { chainHash } from './chain.js';
import type { AuditEvent } from './event.js';
import { AUDIT_MIGRATIONS, INSERT_EVENT, toRow } from './sqlite-schema.js';

/** How the writer is opened, passed as `workerData`. */
export interface WorkerOptions {
  path: string;
  busyTimeoutMs: number;
  synchronous: 'normal' | 'full';
}

/** Messages from the sink to the writer. */
export type ToWorker = { type: 'write'; batch: number; events: AuditEvent[] } | { type: 'close' };

/** Messages from the writer to the sink. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'committed'; batch: number; lastSeq: number }
  | { type: 'failed'; batch: number; error: { message: string; code: string | null } };

function start(port: NonNullable<typeof parentPort>, options: WorkerOptions): void {
  const db = openSqlite(options.path);
  db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs))}`);
  if (options.synchronous === 'full') db.pragma('synchronous = FULL');
  migrate(db, 'audit', AUDIT_MIGRATIONS);

  const readHead = db.prepare('SELECT seq, hash FROM audit_chain_head WHERE id = 1');
  const insert = db.prepare(INSERT_EVENT);
  const writeHead = db.prepare('UPDATE audit_chain_head SET seq = ?, hash = ? WHERE id = 1');
  const writeBatch = db.transaction((events: AuditEvent[]): number => {
    const head = readHead.get() as { seq: number; hash: string };
    let { seq, hash } = head;
    for (const event of events) {
      const prev = hash;
      seq++;
      hash = chainHash(prev, seq, event);
      insert.run(toRow(event, seq, prev, hash));
    }
    writeHead.run(seq, hash);
    return seq;
  });

  port.on('message', (message: ToWorker) => {
    if (message.type === 'close') {
      db.close();
      port.close();
      return;
    }
    let reply: FromWorker;
    try {
      reply = {
        type: 'committed',
        batch: message.batch,
        lastSeq: writeBatch.immediate(message.events),
      };
    } catch (error) {
      const e = error as { message?: unknown; code?: unknown };
      reply = {
        type: 'failed',
        batch: message.batch,
        error: {
          message: typeof e.message === 'string' ? e.message : 'unknown error',
          code: typeof e.code === 'string' ? e.code : null,
        },
      };
    }
    port.postMessage(reply);
  });
  port.postMessage({ type: 'ready' } satisfies FromWorker);
}

if (parentPort) start(parentPort, workerData as WorkerOptions);
