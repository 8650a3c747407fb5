import { timingSafeEqual } from 'node:crypto';
import { GuardError } from '../errors.js';
import { hashVirtualKey, isWellFormedVirtualKey } from './format.js';
import { keyStatus } from './status.js';
import type { ChangeFeed, KeyStore, VirtualKeyRecord } from './types.js';

/** How the authenticator finds keys and how much it remembers. */
export interface AuthenticatorOptions {
  store: KeyStore;
  /**
   * Says when keys may have changed outside this process (e.g. `SqliteKeyStore#changes()`).
   * With it, cached answers hold until the next change; without it, for `maxStaleMs` only.
   */
  changes?: ChangeFeed;
  /** Known keys kept in memory. Default 10,000. */
  cacheSize?: number;
  /** Unknown hashes remembered, so a repeated bad key does not reach the store. Default 10,000. */
  negativeCacheSize?: number;
  /** Without `changes`, how long a cached answer is trusted. Default 1,000 ms. */
  maxStaleMs?: number;
}

/** The request-time check of virtual keys. */
export interface Authenticator {
  /**
   * The key record for an `Authorization` header, or a GuardError: `missing_api_key`,
   * `invalid_api_key`, `revoked_api_key`, `rotated_api_key` or `expired_api_key`.
   */
  authenticate(authorization: string | undefined, now?: Date): Promise<VirtualKeyRecord>;
  /** Forgets every cached answer. */
  clear(): void;
}

/** The first 8 hex digits of the key's hash: tells keys apart in logs, useless for guessing. */
export function keyFingerprint(key: string): string {
  return hashVirtualKey(key).slice(0, 8);
}

/** A Map kept in use order: reading an entry makes it the newest, the oldest goes first. */
class Lru<V> {
  readonly #entries = new Map<string, V>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get(key: string): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.#max) {
      this.#entries.delete(this.#entries.keys().next().value as string);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}

interface Known {
  record: VirtualKeyRecord;
  loadedAt: number;
}

const BEARER = /^bearer(?:[ \t]+(.*))?$/i;

function bearerToken(authorization: string | undefined): string {
  const match = BEARER.exec(authorization?.trim() ?? '');
  const token = match?.[1]?.trim();
  if (!token) throw new GuardError('missing_api_key');
  return token;
}

function deepFreeze(value: object): void {
  for (const inner of Object.values(value)) {
    if (typeof inner === 'object' && inner !== null) deepFreeze(inner);
  }
  Object.freeze(value);
}

function freeze(record: VirtualKeyRecord): VirtualKeyRecord {
  // Cached records are shared by every request of a key: one stage mutating its copy must not
  // change what the next request sees.
  if (record.models) Object.freeze(record.models);
  Object.freeze(record.limits);
  Object.freeze(record.metadata);
  if (record.guard) deepFreeze(record.guard);
  return Object.freeze(record);
}

const REFUSALS = {
  revoked: 'revoked_api_key',
  rotated: 'rotated_api_key',
  expired: 'expired_api_key',
} as const;

/**
 * Builds the authenticator used on every gateway request.
 *
 * The store is asked at most once per key between two changes: answers, known and unknown, are
 * cached by hash, and the whole cache is dropped when `changes` reports a commit anywhere (a
 * CLI revoke or `keys update`, a key created by another replica), so a changed model list or
 * limit applies from the next request. Revoked and expired keys stay cached, since their state
 * is checked against the clock on every call.
 *
 * @example
 * const store = openSqliteKeyStore(config.dataDir);
 * const auth = createAuthenticator({ store, changes: store.changes() });
 * const record = await auth.authenticate(request.headers.authorization);
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const { store, changes } = options;
  const maxStaleMs = options.maxStaleMs ?? 1000;
  const known = new Lru<Known>(options.cacheSize ?? 10_000);
  const unknown = new Lru<number>(options.negativeCacheSize ?? 10_000);
  // Bumped on every reset, so a lookup that started before a reset does not cache its answer.
  let generation = 0;

  function reset(): void {
    known.clear();
    unknown.clear();
    generation++;
  }

  function fresh(loadedAt: number, now: number): boolean {
    return changes !== undefined || now - loadedAt < maxStaleMs;
  }

  async function lookup(hash: string, now: number): Promise<VirtualKeyRecord | null> {
    const hit = known.get(hash);
    if (hit && fresh(hit.loadedAt, now)) return hit.record;
    const miss = unknown.get(hash);
    if (miss !== undefined && fresh(miss, now)) return null;

    const startedIn = generation;
    let found: VirtualKeyRecord | null;
    try {
      found = await store.findByHash(hash);
    } catch (cause) {
      // The store is away (a database outage): say so with a status clients retry, not a 500.
      throw new GuardError('store_unavailable', { cause, headers: { 'retry-after': '1' } });
    }
    if (startedIn !== generation) return found;
    if (found) {
      unknown.delete(hash);
      known.set(hash, { record: freeze(found), loadedAt: now });
    } else {
      known.delete(hash);
      unknown.set(hash, now);
    }
    return found;
  }

  async function authenticate(
    authorization: string | undefined,
    now: Date = new Date(),
  ): Promise<VirtualKeyRecord> {
    const key = bearerToken(authorization);
    if (!isWellFormedVirtualKey(key)) throw new GuardError('invalid_api_key');
    const hash = hashVirtualKey(key);

    if (changes?.()) reset();
    const record = await lookup(hash, now.getTime());
    if (!record) throw new GuardError('invalid_api_key');
    // The lookup matched by hash already; comparing in constant time as well means a store that
    // matched loosely (case folding, a prefix index) cannot turn into a timing oracle.
    const expected = Buffer.from(record.hash, 'hex');
    const actual = Buffer.from(hash, 'hex');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
      throw new GuardError('invalid_api_key');
    }

    const status = keyStatus(record, now.getTime());
    if (status !== 'active') {
      const subject = { id: record.id, name: record.name, environment: record.environment };
      throw new GuardError(REFUSALS[status], { subject });
    }
    return record;
  }

  return { authenticate, clear: reset };
}
