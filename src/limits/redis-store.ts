import { Redis, type RedisOptions } from 'ioredis';
import { HIT_LUA, RESERVE_LUA, SETTLE_LUA } from './redis-scripts.js';
import { TurnBatch } from './turn-batch.js';
import {
  type BucketCounters,
  type KeyCounters,
  type LimitStore,
  LimitStoreUnavailableError,
  type ReserveRequest,
  type SettleRequest,
  type WindowPoint,
} from './types.js';
import { MINUTE_MS } from './window.js';

/** Options of the Redis backend: pass either a `url` (the store owns the client) or a client. */
export interface RedisLimitStoreOptions {
  /** `redis://host:port/db`; the store connects with fail-fast options and closes on `close()`. */
  url?: string;
  /**
   * An ioredis client owned by the caller. Give it `enableOfflineQueue: false` and a
   * `commandTimeout`, or a request waits for Redis instead of following the outage policy.
   */
  client?: Redis;
  /** Prefix of every key the store writes, e.g. `mg:prod:`. Required: replicas share it. */
  prefix: string;
  /**
   * How long a concurrency slot is held when its holder never releases it (a replica that
   * crashed mid-stream). Must exceed the longest request. Default 15 minutes.
   */
  leaseMs?: number;
  /** With `url`: how long one command may take before it counts as an outage. Default 500 ms. */
  commandTimeoutMs?: number;
}

/** Usage hashes hold the month's budget, so they live a month past their last write. */
const USAGE_TTL_MS = 35 * 86_400_000;
/** Per-IP buckets are read over two windows at most. */
const BUCKET_TTL_MS = 3 * MINUTE_MS;

interface ScriptedRedis extends Redis {
  mgReserve(...args: (string | number)[]): Promise<number[]>;
  mgSettle(...args: (string | number)[]): Promise<number>;
  mgHit(...args: (string | number)[]): Promise<number[]>;
}

function toCounters(reply: number[]): KeyCounters {
  return {
    refused: reply[0] ?? 0,
    requestsPrev: reply[1] ?? 0,
    requestsCurr: reply[2] ?? 0,
    tokensPrev: reply[3] ?? 0,
    tokensCurr: reply[4] ?? 0,
    tokensDay: reply[5] ?? 0,
    tokensMonth: reply[6] ?? 0,
    inFlight: reply[7] ?? 0,
  };
}

/** The fail-fast client options: while Redis is away, commands fail at once (no queue). */
function clientOptions(timeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    // Commands issued in the same turn of the event loop share one write and one read: under
    // load, many requests' reservations and settlements travel together.
    enableAutoPipelining: true,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    // Keep trying for ever, at most every 2 s, so limits hold again once Redis returns.
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
  };
}

/**
 * Limit state in Redis, shared by every replica that uses the same `prefix`. One round trip per
 * per-IP check, and one per key for the reservations, and for the settlements, of a turn of the
 * event loop, each an atomic script. Keys of one virtual key share a hash tag, so the scripts
 * also run on Redis Cluster.
 *
 * @example
 * const store = new RedisLimitStore({ url: 'redis://127.0.0.1:6379', prefix: 'mg:prod:' });
 * const limiter = createLimiter({ store });
 */
export class RedisLimitStore implements LimitStore {
  readonly kind = 'redis';
  readonly #client: ScriptedRedis;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #leaseMs: number;
  #failing = false;
  /** Reservations of this turn, by key and limits. */
  readonly #reserving = new TurnBatch((batch: ReserveRequest[]) => this.#reserveBatch(batch));
  /** Settlements of this turn, by key. */
  readonly #settling = new TurnBatch((batch: SettleRequest[]) => this.#settleBatch(batch));
  /** The last error met, for diagnostics; never sent to a caller. */
  lastError: unknown;

  constructor(options: RedisLimitStoreOptions) {
    if (typeof options?.prefix !== 'string' || options.prefix.length === 0) {
      throw new TypeError('RedisLimitStore: `prefix` must be a non-empty string');
    }
    if ((options.url === undefined) === (options.client === undefined)) {
      throw new TypeError('RedisLimitStore: pass exactly one of `url` and `client`');
    }
    const leaseMs = options.leaseMs ?? 15 * MINUTE_MS;
    if (!Number.isInteger(leaseMs) || leaseMs <= 0) {
      throw new TypeError('RedisLimitStore: `leaseMs` must be a positive integer');
    }
    const client =
      options.client ?? new Redis(options.url!, clientOptions(options.commandTimeoutMs ?? 500));
    if (typeof client.defineCommand !== 'function' || typeof client.status !== 'string') {
      throw new TypeError('RedisLimitStore: `client` must be an ioredis client');
    }
    client.defineCommand('mgReserve', { numberOfKeys: 2, lua: RESERVE_LUA });
    client.defineCommand('mgSettle', { numberOfKeys: 2, lua: SETTLE_LUA });
    client.defineCommand('mgHit', { numberOfKeys: 1, lua: HIT_LUA });
    this.#client = client as ScriptedRedis;
    this.#owned = options.client === undefined;
    this.#prefix = options.prefix;
    this.#leaseMs = leaseMs;
    // An owned client's connection errors are expected during an outage and reported through
    // healthy() and the limiter's counters; without a listener ioredis prints each one.
    if (this.#owned) client.on('error', (error) => this.#fail(error));
    client.on('ready', () => {
      this.#failing = false;
    });
  }

  /**
   * Reservations made in the same turn of the event loop for the same key and limits are
   * checked in one script call, in the order they were made: a busy key's concurrent requests
   * cost Redis one script run per turn instead of one each.
   */
  reserve(request: ReserveRequest): Promise<KeyCounters> {
    const { limits } = request;
    const group = `${request.keyId}\n${limits.rpm} ${limits.tpm} ${limits.concurrency} ${limits.dailyTokens} ${limits.monthlyTokens}`;
    return this.#reserving.add(group, request);
  }

  async #reserveBatch(batch: ReserveRequest[]): Promise<KeyCounters[]> {
    const { keyId, limits } = batch[0]!;
    const base = `${this.#prefix}{${keyId}}`;
    const args: (string | number)[] = [
      `${base}:u`,
      `${base}:c`,
      MINUTE_MS,
      limits.rpm,
      limits.tpm,
      limits.concurrency,
      limits.dailyTokens,
      limits.monthlyTokens,
      USAGE_TTL_MS,
      this.#leaseMs,
    ];
    for (const { at, tokens, leaseId } of batch) {
      args.push(
        at.now,
        at.minute,
        at.elapsed,
        at.day,
        at.month,
        tokens,
        leaseId,
        at.now + this.#leaseMs,
      );
    }
    const reply = await this.#run(() => this.#client.mgReserve(...args));
    return batch.map((_, i) => toCounters(reply.slice(i * 8, i * 8 + 8)));
  }

  /**
   * Settlements made in the same turn of the event loop are sent together, one script call per
   * key: under load most requests of a busy key end in the same turn as others.
   */
  settle(request: SettleRequest): Promise<void> {
    return this.#settling.add(request.keyId, request);
  }

  async #settleBatch(batch: SettleRequest[]): Promise<undefined[]> {
    const base = `${this.#prefix}{${batch[0]!.keyId}}`;
    const args: (string | number)[] = [`${base}:u`, `${base}:c`];
    for (const r of batch) args.push(r.leaseId, r.delta, r.minute, r.day, r.month);
    await this.#run(() => this.#client.mgSettle(...args));
    return [];
  }

  async hit(bucket: string, cost: number, at: WindowPoint): Promise<BucketCounters> {
    const key = `${this.#prefix}b:{${bucket}}`;
    const reply = await this.#run(() => this.#client.mgHit(key, at.minute, cost, BUCKET_TTL_MS));
    return { prev: reply[0] ?? 0, curr: reply[1] ?? 0 };
  }

  async read(keyId: string, at: WindowPoint): Promise<KeyCounters> {
    const base = `${this.#prefix}{${keyId}}`;
    const replies = await this.#run(() =>
      this.#client
        .multi()
        .hmget(`${base}:u`, 'w', 'rp', 'rc', 'tp', 'tc', 'd', 'dv', 'm', 'mv')
        .zcount(`${base}:c`, `(${at.now}`, '+inf')
        .exec(),
    );
    const fields = (replies?.[0]?.[1] ?? []) as (string | null)[];
    const num = (i: number) => Number(fields[i] ?? 0);
    const w = fields[0] == null ? at.minute : num(0);
    const current = w >= at.minute;
    const adjacent = w === at.minute - 1;
    return {
      refused: 0,
      requestsPrev: current ? num(1) : adjacent ? num(2) : 0,
      requestsCurr: current ? num(2) : 0,
      tokensPrev: current ? num(3) : adjacent ? num(4) : 0,
      tokensCurr: current ? num(4) : 0,
      tokensDay: num(5) === at.day ? num(6) : 0,
      tokensMonth: num(7) === at.month ? num(8) : 0,
      inFlight: Number(replies?.[1]?.[1] ?? 0),
    };
  }

  healthy(): boolean {
    return this.#client.status === 'ready' && !this.#failing;
  }

  /**
   * Resolves once connected, or rejects after `timeoutMs`. Await it at start-up: until then
   * every check follows the outage policy, as during an outage.
   */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.#client.status === 'ready') return;
    const client = this.#client;
    await new Promise<void>((resolve, reject) => {
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        client.off('ready', onReady);
        reject(new LimitStoreUnavailableError({ cause: this.lastError }));
      }, timeoutMs);
      client.once('ready', onReady);
    });
  }

  async close(): Promise<void> {
    if (this.#owned) this.#client.disconnect();
  }

  /**
   * Runs one command, turning every way Redis can fail into `LimitStoreUnavailableError`. A
   * client that is not connected fails at once, without a round trip or a queued command.
   */
  async #run<T>(command: () => Promise<T>): Promise<T> {
    if (this.#client.status !== 'ready') throw new LimitStoreUnavailableError();
    try {
      const result = await command();
      this.#failing = false;
      return result;
    } catch (error) {
      this.#fail(error);
      throw new LimitStoreUnavailableError({ cause: error });
    }
  }

  #fail(error: unknown): void {
    this.#failing = true;
    this.lastError = error;
  }
}
