import { AuditError, isAuditError } from './errors.js';
import type { AuditEvent } from './event.js';
import type { AuditLogger, EventWriter } from './sink.js';
import type { Spool } from './spool.js';

/** What one sink is doing, for /readyz, metrics and tests. */
export interface SinkStatus {
  name: string;
  /** True while the sink is down or catching up: new events go to the spool. */
  spooling: boolean;
  spoolBytes: number;
  /** The spool reached its limit: events for this sink are refused. */
  spoolFull: boolean;
  /** Admitted, waiting for the next batch. */
  queued: number;
  /** Waiting for room in a full queue. */
  waiting: number;
  written: number;
  spooled: number;
  replayed: number;
  failed: number;
}

/** How a channel batches and retries; every field has a default in `createAuditLog`. */
export interface ChannelOptions {
  batchSize: number;
  maxQueue: number;
  logger?: AuditLogger;
  /** First wait before replaying after a failure; doubles up to `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
}

interface Pending {
  event: AuditEvent;
  resolve: () => void;
  reject: (error: Error) => void;
}

const noop = () => {};

/**
 * Carries events to one sink: a bounded queue, group commit, and a spool for outages.
 *
 * One batch is in flight at a time. Events recorded meanwhile wait and leave together as the
 * next batch, so latency stays near one write and throughput grows with concurrency. When the
 * queue is full, `enqueue` waits for room in arrival order: nothing is dropped to make room.
 *
 * When a write fails, its batch and every later one go to the spool (fsynced), and each counts
 * as recorded once spooled. Replay starts after a delay growing from `retryMs`: spooled events
 * are written back in order, interleaved with new ones, which keep going to the spool until it
 * is empty, so the sink receives events in the order they were recorded. A spool that cannot
 * take an event (full, or its disk failing) rejects it, and the gateway answers 500: an event is
 * never lost without its caller being told.
 */
export class SinkChannel {
  readonly #writer: EventWriter;
  readonly #spool: Spool;
  readonly #batchSize: number;
  readonly #maxQueue: number;
  readonly #logger: AuditLogger | undefined;
  readonly #firstRetryMs: number;
  readonly #maxRetryMs: number;
  #queue: Pending[] = [];
  #blocked: Pending[] = [];
  #inFlight = 0;
  #running = false;
  #scheduled = false;
  #spooling: boolean;
  #replayDue: boolean;
  #retryMs = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  #last: Promise<void> = Promise.resolve();
  #closing: Promise<void> | null = null;
  #counters = { written: 0, spooled: 0, replayed: 0, failed: 0 };

  constructor(writer: EventWriter, spool: Spool, options: ChannelOptions) {
    this.#writer = writer;
    this.#spool = spool;
    this.#batchSize = Math.max(1, options.batchSize);
    this.#maxQueue = Math.max(this.#batchSize, options.maxQueue);
    this.#logger = options.logger;
    this.#firstRetryMs = options.retryMs ?? 250;
    this.#maxRetryMs = options.maxRetryMs ?? 5000;
    // Events left in the spool by an earlier run are replayed first.
    this.#spooling = spool.pending;
    this.#replayDue = spool.pending;
    if (spool.pending) this.#kick();
  }

  get name(): string {
    return this.#writer.name;
  }

  /** Resolves once the event is written or spooled; rejects with an AuditError otherwise. */
  enqueue(event: AuditEvent): Promise<void> {
    if (this.#closing) {
      return Promise.reject(new AuditError('audit_closed', 'the audit trail is closed'));
    }
    const promise = new Promise<void>((resolve, reject) => {
      const entry = { event, resolve, reject };
      const full = this.#queue.length + this.#inFlight >= this.#maxQueue;
      if (this.#blocked.length > 0 || full) this.#blocked.push(entry);
      else this.#queue.push(entry);
    });
    this.#last = promise.then(noop, noop);
    this.#kick();
    return promise;
  }

  /** Resolves once every event enqueued before the call is settled. */
  flush(): Promise<void> {
    return this.#last;
  }

  /** Refuses new events, settles the rest, then closes the writer and the spool. */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  spoolFull(): boolean {
    return this.#spool.full();
  }

  status(): SinkStatus {
    return {
      name: this.name,
      spooling: this.#spooling,
      spoolBytes: this.#spool.bytes,
      spoolFull: this.#spool.full(),
      queued: this.#queue.length,
      waiting: this.#blocked.length,
      ...this.#counters,
    };
  }

  async #shutDown(): Promise<void> {
    await this.flush();
    while (this.#running) await new Promise((resolve) => setImmediate(resolve));
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#spool.pending) {
      this.#logger?.warn(
        { sink: this.name, bytes: this.#spool.bytes },
        'audit spool kept for replay at next start',
      );
    }
    await this.#writer.close();
    await this.#spool.close();
  }

  #kick(): void {
    if (this.#running || this.#scheduled) return;
    this.#scheduled = true;
    // One turn of the event loop gathers the events recorded together into one batch.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      for (;;) {
        if (this.#spooling && this.#replayDue) await this.#replayStep();
        if (this.#queue.length === 0) {
          if (this.#spooling && this.#replayDue) continue;
          break;
        }
        const batch = this.#queue.splice(0, this.#batchSize);
        this.#inFlight = batch.length;
        this.#admit();
        await this.#deliver(batch);
        this.#inFlight = 0;
        this.#admit();
      }
    } finally {
      this.#running = false;
    }
  }

  async #deliver(batch: Pending[]): Promise<void> {
    const events = batch.map((entry) => entry.event);
    if (!this.#spooling) {
      try {
        await this.#writer.write(events);
        this.#counters.written += batch.length;
        for (const entry of batch) entry.resolve();
        return;
      } catch (error) {
        this.#logger?.warn(
          { sink: this.name, err: error, events: batch.length },
          'audit sink failed; spooling its events',
        );
        this.#spooling = true;
        this.#replayLater();
      }
    }
    try {
      await this.#spool.append(events);
      this.#counters.spooled += batch.length;
      for (const entry of batch) entry.resolve();
    } catch (error) {
      this.#counters.failed += batch.length;
      const code = isAuditError(error, 'audit_spool_full')
        ? 'audit_spool_full'
        : 'audit_spool_failed';
      this.#logger?.error(
        { sink: this.name, code, events: batch.length },
        'audit events refused: the sink is down and its spool cannot take them',
      );
      const refused = isAuditError(error)
        ? error
        : new AuditError(code, 'the audit spool cannot be written', { cause: error });
      for (const entry of batch) entry.reject(refused);
    }
  }

  async #replayStep(): Promise<void> {
    const chunk = await this.#spool.read(this.#batchSize * 4);
    if (!chunk) {
      await this.#spool.clear();
      this.#spooling = false;
      this.#replayDue = false;
      this.#retryMs = 0;
      this.#logger?.warn(
        { sink: this.name, replayed: this.#counters.replayed },
        'audit spool replayed; writing to the sink again',
      );
      return;
    }
    try {
      await this.#writer.write(chunk.events, { replay: true });
      await this.#spool.advance(chunk.end);
      this.#counters.replayed += chunk.events.length;
      this.#retryMs = 0;
    } catch {
      this.#replayDue = false;
      this.#replayLater();
    }
  }

  #replayLater(): void {
    if (this.#retryTimer) return;
    this.#retryMs = Math.min(Math.max(this.#retryMs * 2, this.#firstRetryMs), this.#maxRetryMs);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#replayDue = true;
      this.#kick();
    }, this.#retryMs);
    // Spooled events are safe on disk: a process with nothing else to do may exit.
    this.#retryTimer.unref();
  }

  #admit(): void {
    const room = this.#maxQueue - this.#queue.length - this.#inFlight;
    if (room > 0 && this.#blocked.length > 0) this.#queue.push(...this.#blocked.splice(0, room));
  }
}
