import type { Command } from 'commander';
import { Redis } from 'ioredis';
import type { Secret } from '../config/secret.js';
import { GuardError } from '../errors.js';
import type { StoredKeyLimits, VirtualKeyRecord } from '../keys/types.js';
import { createLimiter, type KeyUsage } from '../limits/limiter.js';
import { RedisLimitStore } from '../limits/redis-store.js';
import { LimitStoreUnavailableError } from '../limits/types.js';
import { effectiveLimits } from '../policy/policy.js';
import { openKeyStore } from '../store/open.js';
import { type CliContext, cliContext } from './context.js';
import { parseKeyId } from './keys-flags.js';
import { printable } from './keys-view.js';
import { exitCodes, out, outJson } from './output.js';

type Config = CliContext['config'];

/** How long `keys usage` waits for Redis before saying it cannot reach it. */
const CONNECT_TIMEOUT_MS = 3000;

const MEMORY_BACKEND =
  'keys usage needs limits.redisUrl (or MISTRAL_GUARD_REDIS_URL): with the in-memory limits ' +
  'backend the counters live inside each gateway process, where the CLI cannot read them';

/** What `keys usage --json` prints; limits and remaining amounts are null where there is none. */
export interface UsageView {
  id: string;
  name: string;
  environment: string;
  backend: 'redis';
  /** When the counters were read, ISO 8601 UTC. */
  at: string;
  limits: StoredKeyLimits;
  /** Requests and tokens over the last minute, as the sliding window estimates them. */
  requestsMinute: number;
  tokensMinute: number;
  inFlight: number;
  tokensDay: number;
  tokensMonth: number;
  remaining: KeyUsage['remaining'];
}

/** The key's effective limits; only its own when this configuration lacks its profile. */
function limitsOf(record: VirtualKeyRecord, config: Config): StoredKeyLimits {
  const profile = config.profiles[record.environment];
  if (!profile) {
    process.stderr.write(
      `note: no profile for environment ${record.environment} is configured; ` +
        "only the key's own limits are shown.\n",
    );
    return record.limits;
  }
  const { onOutage: _, ...limits } = effectiveLimits(profile.limits, record.limits);
  return limits;
}

async function readRecord(config: Config, id: string): Promise<VirtualKeyRecord> {
  const store = await openKeyStore(config);
  try {
    const record = await store.get(id);
    if (!record) throw new GuardError('not_found', { message: `no virtual key with id ${id}` });
    return record;
  } finally {
    await store.close();
  }
}

/**
 * A client for one read: a single connection attempt, no reconnection, no queue. The last
 * connection error is kept for its code, since connect() rejects with a generic one.
 */
function oneShotClient(url: string): { client: Redis; lastError: () => unknown } {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: () => null,
    // ioredis waits this long for a socket that is already gone to close, keeping the
    // process alive after an answer has been printed.
    disconnectTimeout: 100,
  });
  let last: unknown;
  client.on('error', (error) => {
    last = error;
  });
  return { client, lastError: () => last };
}

function unreachable(error: unknown): null {
  // The error code only: the message of a connection error may name the host, and the URL
  // may carry a password.
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  process.stderr.write(
    `error: cannot reach the Redis of limits.redisUrl${code ? ` (${code})` : ''}\n`,
  );
  return null;
}

/**
 * Reads the key's counters from the shared Redis, as the gateways count them. Null, with the
 * reason printed, when Redis cannot be reached.
 */
async function readUsage(
  redis: { url: Secret; prefix: string },
  record: VirtualKeyRecord,
  limits: StoredKeyLimits,
): Promise<KeyUsage | null> {
  const { client, lastError } = oneShotClient(redis.url.reveal());
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    return unreachable(lastError() ?? error);
  }
  const store = new RedisLimitStore({ client, prefix: redis.prefix });
  const limiter = createLimiter({ store, authFailuresPerMinute: 0 });
  try {
    return await limiter.usage({ id: record.id, environment: record.environment, limits });
  } catch (error) {
    if (!(error instanceof LimitStoreUnavailableError)) throw error;
    return unreachable(store.lastError);
  } finally {
    client.disconnect();
  }
}

function figure(used: number, limit: number | null, left: number | null): string {
  if (limit === null || left === null) return `${used} (no limit)`;
  return `${used} of ${limit} (${left} left)`;
}

function printUsage(v: UsageView): void {
  const rows: Array<[string, string]> = [
    ['id', v.id],
    ['name', printable(v.name)],
    ['environment', v.environment],
    ['at', v.at],
    ['requests/min', figure(v.requestsMinute, v.limits.rpm, v.remaining.requestsMinute)],
    ['tokens/min', figure(v.tokensMinute, v.limits.tpm, v.remaining.tokensMinute)],
    ['in flight', figure(v.inFlight, v.limits.concurrency, v.remaining.concurrency)],
    ['tokens today', figure(v.tokensDay, v.limits.dailyTokens, v.remaining.tokensDay)],
    ['tokens month', figure(v.tokensMonth, v.limits.monthlyTokens, v.remaining.tokensMonth)],
  ];
  for (const [label, value] of rows) out(`${`${label}:`.padEnd(14)} ${value}`);
}

/**
 * `keys usage ID`: the key's use of its limits now, from the counters the gateways share in
 * Redis. Exit codes: 1 for an unknown key or when the limits live in memory (the command is
 * right but cannot be answered in this deployment), 2 for bad usage or an unreachable Redis.
 */
export async function usage(id: string, flags: { json?: boolean }, command: Command) {
  const keyId = parseKeyId(id);
  const { config } = await cliContext(command);
  const record = await readRecord(config, keyId);
  const url = config.limits.redisUrl;
  if (!url) {
    // Zeros read from this process's own memory would look like real figures: say so instead.
    if (flags.json) outJson({ id: record.id, backend: 'memory', usage: null });
    process.stderr.write(`error: ${MEMORY_BACKEND}\n`);
    process.exitCode = exitCodes.failure;
    return;
  }

  const limits = limitsOf(record, config);
  const counted = await readUsage({ url, prefix: config.limits.prefix }, record, limits);
  if (!counted) {
    process.exitCode = exitCodes.usage;
    return;
  }
  const v: UsageView = {
    id: record.id,
    name: record.name,
    environment: record.environment,
    backend: 'redis',
    at: counted.at,
    limits,
    requestsMinute: counted.requestsMinute,
    tokensMinute: counted.tokensMinute,
    inFlight: counted.inFlight,
    tokensDay: counted.tokensDay,
    tokensMonth: counted.tokensMonth,
    remaining: counted.remaining,
  };
  if (flags.json) return outJson(v);
  printUsage(v);
}
