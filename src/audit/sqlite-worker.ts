/**
 * The audit writer thread. better-sqlite3 is synchronous, so commits run here, never on the
 * gateway's event loop. The thread owns one connection and commits each batch it receives in one
 * IMMEDIATE transaction: the write lock is taken up front, so a busy file fails or waits at BEGIN
 * rather than half-way through the batch.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { migrate, openSqlite } from '../store/sqlite.js';
import { chainHash } from './chain.js';
import { type CheckpointPolicy, makeCheckpoint, SQLITE_CHAIN_ID } from './checkpoint.js';
import type { AuditEvent } from './event.js';
import { AUDIT_MIGRATIONS, INSERT_EVENT, rowValues } from './sqlite-schema.js';

/** How the writer is opened, passed as `workerData`. */
export interface WorkerOptions {
  path: string;
  busyTimeoutMs: number;
  synchronous: 'normal' | 'full';
  /** Signs checkpoints; the key stays in this process's memory. */
  hmacKey: string | null;
  checkpoints: CheckpointPolicy;
}

/**
 * Messages from the sink to the writer. A batch travels as one JSON text: copying a string
 * between threads is a memcpy, while the structured clone of hundreds of event objects costs the
 * gateway's event loop several microseconds per event.
 */
export type ToWorker = { type: 'write'; batch: number; events: string } | { type: 'close' };

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
  const insertCheckpoint = db.prepare(
    `INSERT OR IGNORE INTO audit_checkpoints (chain_id, seq, hash, time, kind, signature)
     VALUES (@chainId, @seq, @hash, @time, @kind, @signature)`,
  );
  const { every, ms } = options.checkpoints;
  let checkpointedSeq =
    (db
      .prepare('SELECT MAX(seq) FROM audit_checkpoints WHERE chain_id = ?')
      .pluck()
      .get(SQLITE_CHAIN_ID) as number | null) ?? 0;
  let checkpointedAt = Date.now();
  // Set by this writer's commits, so an idle writer never takes the write lock for nothing.
  let dirty = false;

  /** Inside a transaction: checkpoints the head when enough events or time went by. */
  function checkpointIfDue(seq: number, hash: string, force: boolean): void {
    if (seq <= checkpointedSeq) return;
    if (!force && seq - checkpointedSeq < every && Date.now() - checkpointedAt < ms) return;
    const checkpoint = makeCheckpoint(
      { chainId: SQLITE_CHAIN_ID, seq, hash },
      'periodic',
      options.hmacKey,
    );
    insertCheckpoint.run(checkpoint);
    checkpointedSeq = seq;
    checkpointedAt = Date.now();
    dirty = false;
  }

  const writeBatch = db.transaction((events: AuditEvent[]): number => {
    const head = readHead.get() as { seq: number; hash: string };
    let { seq, hash } = head;
    for (const event of events) {
      const next = chainHash(hash, seq + 1, event);
      // A batch replayed from a spool may hold events an earlier, failed-looking commit kept:
      // those insert nothing and take no place in the chain.
      if (insert.run(rowValues(event, seq + 1, hash, next)).changes === 0) continue;
      seq++;
      hash = next;
    }
    writeHead.run(seq, hash);
    dirty = true;
    checkpointIfDue(seq, hash, false);
    return seq;
  });
  const checkpointNow = db.transaction((force: boolean) => {
    const head = readHead.get() as { seq: number; hash: string };
    checkpointIfDue(head.seq, head.hash, force);
  });

  // A quiet trail still gets its last events under a checkpoint within `ms`.
  const timer = setInterval(
    () => {
      if (!dirty) return;
      try {
        checkpointNow.immediate(false);
      } catch {
        // The next batch or tick tries again; a busy file is no reason to stop the writer.
      }
    },
    Math.min(ms, 60_000),
  );

  port.on('message', (message: ToWorker) => {
    if (message.type === 'close') {
      clearInterval(timer);
      try {
        if (dirty) checkpointNow.immediate(true);
      } catch {
        // Closing goes on: the chain is intact without its last checkpoint.
      }
      db.close();
      port.close();
      return;
    }
    let reply: FromWorker;
    try {
      reply = {
        type: 'committed',
        batch: message.batch,
        lastSeq: writeBatch.immediate(JSON.parse(message.events) as AuditEvent[]),
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
