import { SinkChannel, type SinkStatus } from './channel.js';
import { type AuditEvent, type AuditEventInput, toAuditRecord } from './event.js';
import type { AuditLogger, AuditSink, EventWriter } from './sink.js';
import { Spool } from './spool.js';

/** Options of the audit log; every field but `spoolDir` has a default. */
export interface AuditLogOptions {
  /** Where each sink's spool file lives (`<spoolDir>/<sink>.jsonl`). */
  spoolDir: string;
  /** Largest spool file per sink. Default 256 MiB. */
  spoolMaxBytes?: number;
  /** Most events per batch. Default 512. */
  batchSize?: number;
  /** Most events waiting per sink; beyond it `record` waits for room. Default 10,000. */
  maxQueue?: number;
  /** First wait before replaying a spool after a failure, doubling up to 5 s. Default 250 ms. */
  retryMs?: number;
  logger?: AuditLogger;
  /** Runs after every sink closed, e.g. to release a connection pool the sinks shared. */
  onClose?: () => Promise<void>;
}

/**
 * The audit trail as the gateway and the CLI see it: one `record` that reaches every configured
 * sink. An event gets its id and time once, so each sink holds the same event.
 */
export class AuditLog implements AuditSink {
  readonly #channels: SinkChannel[];
  readonly #onClose: (() => Promise<void>) | undefined;

  constructor(channels: SinkChannel[], onClose?: () => Promise<void>) {
    this.#channels = channels;
    this.#onClose = onClose;
  }

  /**
   * Resolves once every sink has the event, durably written or spooled; rejects with an
   * AuditError when one of them cannot take it.
   */
  record(input: AuditEventInput): Promise<void> {
    let event: AuditEvent;
    try {
      event = toAuditRecord(input);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.append(event);
  }

  /** Records an event that already has its id and time. */
  async append(event: AuditEvent): Promise<void> {
    if (this.#channels.length === 1) return this.#channels[0]!.enqueue(event);
    await Promise.all(this.#channels.map((channel) => channel.enqueue(event)));
  }

  async flush(): Promise<void> {
    await Promise.all(this.#channels.map((channel) => channel.flush()));
  }

  async close(): Promise<void> {
    await Promise.all(this.#channels.map((channel) => channel.close()));
    await this.#onClose?.();
  }

  /** True when a sink's spool is full: its events are being refused. */
  spoolFull(): boolean {
    return this.#channels.some((channel) => channel.spoolFull());
  }

  /**
   * False when events are being refused (a full spool). A sink that is down while its spool
   * has room still counts as healthy: nothing is lost, the events wait on local disk.
   */
  healthy(): boolean {
    return !this.spoolFull();
  }

  /** What each sink is doing: spooling or not, spool size, counters. */
  status(): SinkStatus[] {
    return this.#channels.map((channel) => channel.status());
  }
}

/**
 * Builds the audit log over one writer per sink, each with its own queue and spool. Events
 * spooled by an earlier run are replayed first.
 *
 * @example
 * const store = sqliteEventWriter(await openAuditLog(dataDir));
 * const jsonl = await openJsonlWriter('-');
 * const audit = await createAuditLog([store, jsonl], { spoolDir: join(dataDir, 'spool') });
 * await audit.record({ requestId, action: 'chat.complete', method: 'POST', path, status: 200 });
 */
export async function createAuditLog(
  writers: EventWriter[],
  options: AuditLogOptions,
): Promise<AuditLog> {
  if (writers.length === 0) throw new TypeError('an audit log needs at least one sink');
  const channels: SinkChannel[] = [];
  for (const writer of writers) {
    const spool = await Spool.open(
      options.spoolDir,
      writer.name,
      options.spoolMaxBytes ?? 256 * 1024 * 1024,
    );
    channels.push(
      new SinkChannel(writer, spool, {
        batchSize: options.batchSize ?? 512,
        maxQueue: options.maxQueue ?? 10_000,
        logger: options.logger,
        retryMs: options.retryMs,
      }),
    );
  }
  return new AuditLog(channels, options.onClose);
}
