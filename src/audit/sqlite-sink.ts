import { once } from 'node:events';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AUDIT_SQLITE_FILE } from '../store/sqlite.js';
import { type CheckpointPolicy, DEFAULT_CHECKPOINTS } from './checkpoint.js';
import { AuditError } from './errors.js';
import { type AuditEvent, type AuditEventInput, toAuditRecord } from './event.js';
import type { AuditLogger, AuditSink, EventWriter } from './sink.js';
import type { FromWorker, ToWorker, WorkerOptions } from './sqlite-worker.js';

const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(`./sqlite-worker${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url);

/**
 * Starts the writer thread. Compiled code runs the worker file beside this one. From TypeScript
 * sources (tests, development) tsx's loader cannot be relied on inside a worker: on Node 20 it
 * registers itself in the main thread only, although the worker inherits `--import tsx`. So the
 * entry goes through tsx's own import API there, a path that exists only where tsx does.
 */
function startWriter(workerData: WorkerOptions): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER_URL, { workerData });
  const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = JSON.stringify(WORKER_URL.href);
  const parent = JSON.stringify(import.meta.url);
  const code = `import(${api}).then((tsx) => tsx.tsImport(${entry}, ${parent}));`;
  return new Worker(code, { eval: true, workerData });
}

/** Options of the SQLite audit sink; every field has a default. */
export interface SqliteAuditSinkOptions {
  /** Most events committed in one transaction (default 512). */
  batchSize?: number;
  /** Most events queued or being written; beyond it `record` waits for room (default 10,000). */
  maxQueue?: number;
  /** How long a commit waits for another process's write lock (default 5,000 ms). */
  busyTimeoutMs?: number;
  /**
   * `normal` (default) keeps every committed event through a process crash (kill -9); `full`
   * also through an OS crash or power loss, at the price of an fsync per commit.
   */
  synchronous?: 'normal' | 'full';
  /** Where crashes and failed commits are reported. */
  logger?: AuditLogger;
  /** Signs checkpoints (HMAC-SHA256); without it they are written unsigned. */
  hmacKey?: string | null;
  /** When to take periodic checkpoints; default every 1,000 events or minute. */
  checkpoints?: CheckpointPolicy;
}

/** Counters for metrics and tests. */
export interface SqliteAuditSinkStats {
  /** Admitted, waiting for the next batch. */
  queued: number;
  /** In the batch being committed. */
  writing: number;
  /** Waiting for room in a full queue. */
  waiting: number;
  committed: number;
  failed: number;
  restarts: number;
}

interface Pending {
  event: AuditEvent;
  resolve: () => void;
  reject: (error: Error) => void;
}

type WorkerState = 'starting' | 'ready' | 'down' | 'stopped';

const noop = () => {};
const MAX_RESTART_DELAY_MS = 10_000;

/**
 * Opens the audit trail in the shared database file under `dataDir` and resolves once its writer
 * thread has the file open and migrated, so a bad path or a broken file fails at startup.
 *
 * @example
 * const audit = await openAuditLog(config.dataDir, { logger });
 * await audit.record({ requestId, action: 'chat.complete', method: 'POST', path, status: 200 });
 * await audit.close();
 */
export async function openAuditLog(
  dataDir: string,
  options: SqliteAuditSinkOptions = {},
): Promise<SqliteAuditSink> {
  const sink = new SqliteAuditSink(dataDir, options);
  await sink.started;
  return sink;
}

/**
 * The SQLite audit sink. Commits run on a worker thread; the event loop only queues events and
 * settles promises.
 *
 * Group commit: one batch is written at a time. Events recorded while it commits wait in the
 * queue and leave together as the next batch, at the next turn of the event loop or as soon as
 * `batchSize` are waiting. Latency stays near one commit; throughput grows with concurrency.
 *
 * Failure: a failed commit rejects the events of its batch (`audit_write_failed`). A crashed
 * writer rejects the batch it held (`audit_worker_crashed`; those events may or may not have
 * been committed) and is restarted at once; queued events go to the new writer. A writer that
 * cannot start rejects everything queued, and `record` rejects (`audit_unavailable`) until a
 * restart, retried with a growing delay, succeeds. Every rejection is logged.
 */
export class SqliteAuditSink implements AuditSink {
  /** Settles when the first writer is ready or could not start. */
  readonly started: Promise<void>;

  private readonly workerOptions: WorkerOptions;
  private readonly batchSize: number;
  private readonly maxQueue: number;
  private readonly logger: AuditLogger | undefined;
  private worker: Worker | null = null;
  private state: WorkerState = 'starting';
  private everReady = false;
  private refed = false;
  private queue: Pending[] = [];
  private blocked: Pending[] = [];
  private writing: Pending[] = [];
  private batch = 0;
  private flushScheduled = false;
  private last: Promise<void> = Promise.resolve();
  private closing: Promise<void> | null = null;
  private stopping = false;
  private restartDelayMs = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private settleStart: { resolve: () => void; reject: (error: Error) => void } | null = null;
  private counters = { committed: 0, failed: 0, restarts: 0 };

  /** Starts the writer; prefer `openAuditLog`, which also waits until it is ready. */
  constructor(dataDir: string, options: SqliteAuditSinkOptions = {}) {
    this.workerOptions = {
      path: join(dataDir, AUDIT_SQLITE_FILE),
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      synchronous: options.synchronous ?? 'normal',
      hmacKey: options.hmacKey ?? null,
      checkpoints: options.checkpoints ?? DEFAULT_CHECKPOINTS,
    };
    this.batchSize = Math.max(1, options.batchSize ?? 512);
    this.maxQueue = Math.max(this.batchSize, options.maxQueue ?? 10_000);
    this.logger = options.logger;
    this.started = new Promise((resolve, reject) => {
      this.settleStart = { resolve, reject };
    });
    this.started.catch(noop);
    this.spawn();
  }

  /** Queues one event; resolves once it is committed, rejects with an AuditError otherwise. */
  record(input: AuditEventInput): Promise<void> {
    let event: AuditEvent;
    try {
      event = toAuditRecord(input);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.append(event);
  }

  /**
   * Queues an event that already has its id and time (one replayed from a spool, or built by
   * the audit log for several sinks). An event whose id is already stored is skipped.
   */
  append(event: AuditEvent): Promise<void> {
    if (this.closing) {
      return Promise.reject(new AuditError('audit_closed', 'the audit trail is closed'));
    }
    if (this.state === 'down' || this.state === 'stopped') {
      return Promise.reject(new AuditError('audit_unavailable', 'the audit writer is not running'));
    }
    const promise = new Promise<void>((resolve, reject) => {
      const entry = { event, resolve, reject };
      // Once anyone waits, newcomers wait behind them: room is handed out in arrival order.
      const full = this.queue.length + this.writing.length >= this.maxQueue;
      if (this.blocked.length > 0 || full) this.blocked.push(entry);
      else this.queue.push(entry);
    });
    this.last = promise.then(noop, noop);
    this.pump();
    this.updateRef();
    return promise;
  }

  /**
   * Resolves once every event recorded before the call is committed or rejected. Admission and
   * commits are both first in, first out, so waiting for the newest event covers the older ones.
   */
  flush(): Promise<void> {
    return this.last;
  }

  /** Rejects new events, flushes the rest, then stops the writer and closes the database. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  /** Current counters. */
  stats(): SqliteAuditSinkStats {
    return {
      queued: this.queue.length,
      writing: this.writing.length,
      waiting: this.blocked.length,
      ...this.counters,
    };
  }

  private async shutDown(): Promise<void> {
    await this.flush();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.stopping = true;
    const worker = this.worker;
    if (!worker) {
      this.state = 'stopped';
      return;
    }
    worker.ref();
    const exited = once(worker, 'exit');
    worker.postMessage({ type: 'close' } satisfies ToWorker);
    await exited;
  }

  private spawn(): void {
    this.restartTimer = null;
    this.state = 'starting';
    const worker = startWriter(this.workerOptions);
    this.worker = worker;
    this.refed = true;
    let failure: unknown;
    worker.on('message', (message: FromWorker) => {
      if (worker === this.worker) this.onMessage(message);
    });
    worker.on('error', (error) => {
      failure = error;
    });
    worker.on('exit', (exitCode) => {
      if (worker === this.worker) this.onExit(exitCode, failure);
    });
    this.updateRef();
  }

  private onMessage(message: FromWorker): void {
    if (message.type === 'ready') {
      this.state = 'ready';
      this.everReady = true;
      this.restartDelayMs = 0;
      this.settleStart?.resolve();
      this.settleStart = null;
    } else if (message.batch === this.batch) {
      const done = this.writing;
      this.writing = [];
      if (message.type === 'committed') {
        this.counters.committed += done.length;
        for (const entry of done) entry.resolve();
      } else {
        this.counters.failed += done.length;
        this.logger?.error(
          { code: message.error.code, events: done.length },
          'audit batch could not be committed',
        );
        const error = new AuditError('audit_write_failed', 'the audit event was not stored', {
          cause: message.error,
        });
        for (const entry of done) entry.reject(error);
      }
      this.admit();
    }
    this.pump();
    this.updateRef();
  }

  private onExit(exitCode: number, failure: unknown): void {
    this.worker = null;
    if (this.stopping) {
      this.state = 'stopped';
      return;
    }
    const wasReady = this.state === 'ready';
    const lost = this.writing;
    this.writing = [];
    const crashed = new AuditError('audit_worker_crashed', 'the audit writer stopped', {
      cause: failure,
    });
    this.fail(lost, crashed);
    this.logger?.error(
      { exitCode, err: failure, events: lost.length, starting: !wasReady },
      'audit writer exited unexpectedly',
    );
    if (wasReady) {
      this.counters.restarts++;
      this.spawn();
    } else {
      this.giveUpStart(failure);
    }
  }

  /**
   * The writer died before it could open the database, so a retry may never work: nobody is
   * kept waiting for it. Queued events are rejected now (the gateway answers 500 rather than
   * hang) and `record` rejects until a delayed restart succeeds.
   */
  private giveUpStart(failure: unknown): void {
    const unavailable = new AuditError('audit_unavailable', 'the audit writer could not start', {
      cause: failure,
    });
    const waiting = [...this.queue, ...this.blocked];
    this.queue = [];
    this.blocked = [];
    this.fail(waiting, unavailable);
    if (waiting.length > 0) {
      this.logger?.error({ events: waiting.length }, 'audit events rejected: no writer');
    }
    if (!this.everReady) {
      // Never started at all: a configuration fault, reported by `openAuditLog`, not retried.
      this.state = 'stopped';
      this.settleStart?.reject(unavailable);
      this.settleStart = null;
      return;
    }
    this.state = 'down';
    this.restartDelayMs = Math.min(Math.max(this.restartDelayMs * 2, 250), MAX_RESTART_DELAY_MS);
    this.logger?.warn({ delayMs: this.restartDelayMs }, 'audit writer restart scheduled');
    this.restartTimer = setTimeout(() => {
      this.counters.restarts++;
      this.spawn();
    }, this.restartDelayMs);
    this.restartTimer.unref();
  }

  private fail(entries: Pending[], error: AuditError): void {
    this.counters.failed += entries.length;
    for (const entry of entries) entry.reject(error);
  }

  /** Moves waiting events into the queue while there is room. */
  private admit(): void {
    const room = this.maxQueue - this.queue.length - this.writing.length;
    if (room > 0 && this.blocked.length > 0) this.queue.push(...this.blocked.splice(0, room));
  }

  /** Sends the next batch now if it is full, else at the next turn of the event loop. */
  private pump(): void {
    if (this.state !== 'ready' || this.writing.length > 0 || this.queue.length === 0) return;
    if (this.queue.length >= this.batchSize) {
      this.send();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.send();
      });
    }
  }

  private send(): void {
    if (this.state !== 'ready' || this.writing.length > 0 || this.queue.length === 0) return;
    this.writing = this.queue.splice(0, this.batchSize);
    this.batch++;
    const message: ToWorker = {
      type: 'write',
      batch: this.batch,
      events: JSON.stringify(this.writing.map((entry) => entry.event)),
    };
    this.worker!.postMessage(message);
    this.admit();
  }

  /**
   * Keeps the process alive only while events are pending or the writer starts, so an idle
   * sink never holds a process open, and a pending event never loses its commit to an exit.
   */
  private updateRef(): void {
    if (!this.worker) return;
    const busy =
      this.state === 'starting' ||
      this.queue.length + this.writing.length + this.blocked.length > 0;
    if (busy === this.refed) return;
    this.refed = busy;
    if (busy) this.worker.ref();
    else this.worker.unref();
  }
}

/**
 * The SQLite sink as the audit log's `store` writer. A batch is handed over event by event in
 * one turn, so the sink commits it as one group; it resolves when every event is committed.
 */
export function sqliteEventWriter(sink: SqliteAuditSink): EventWriter {
  return {
    name: 'store',
    async write(events) {
      // Waits for every event, so a failed batch is never replayed while part of it is queued.
      const results = await Promise.allSettled(events.map((event) => sink.append(event)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    close: () => sink.close(),
  };
}
