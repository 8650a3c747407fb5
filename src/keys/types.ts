/**
 * Virtual keys as data, and the contract every key store implements. The contract is async so
 * that a networked store (PostgreSQL) can implement it as well as the embedded SQLite one.
 */

import type { Category, GuardAction } from '../guard/index.js';

/**
 * Per-key limits, enforced by `limits/`. Each is a positive integer; an absent or null field
 * means the key has no limit of its own there, and its profile's applies. A key's limit can only
 * narrow its profile's (see `effectivePolicy`).
 */
export interface KeyLimits {
  /** Requests per minute. */
  rpm?: number | null;
  /** Prompt and completion tokens per minute. */
  tpm?: number | null;
  /** Requests in flight at once. */
  concurrency?: number | null;
  /** Tokens per UTC day. */
  dailyTokens?: number | null;
  /** Tokens per UTC month. */
  monthlyTokens?: number | null;
}

/** A key's own limits as stored and read back: every field present, null where unset. */
export type StoredKeyLimits = Required<KeyLimits>;

/**
 * A key's own guard rules for one direction: an action per category and per detector id, with
 * the same meaning as in a profile's guard. A rule can only make its profile stricter; one that
 * would loosen it is ignored (see `effectiveGuardPolicy`).
 */
export interface KeyGuardRules {
  categories?: Partial<Record<Category, GuardAction>>;
  detectors?: Record<string, GuardAction>;
}

/** A key's own guard rules for prompts (`input`) and answers (`output`). */
export interface KeyGuard {
  input?: KeyGuardRules;
  output?: KeyGuardRules;
}

/** The names of the per-key limits, in the order they are shown. */
export const KEY_LIMIT_NAMES = [
  'rpm',
  'tpm',
  'concurrency',
  'dailyTokens',
  'monthlyTokens',
] as const;

/** One virtual key as stored. Holds the key's hash, never the key itself. */
export interface VirtualKeyRecord {
  /** `key_` and 16 base62 characters; public, safe to log and to show. */
  id: string;
  /** A label for people, e.g. the application that holds the key. */
  name: string;
  /** SHA-256 hex of the key. Never shown or logged: with it, a copy of the store finds keys. */
  hash: string;
  /** The environment (profile) whose upstream key and policy serve this key. */
  environment: string;
  /** Models this key may use; null means whatever its environment's profile allows. */
  models: string[] | null;
  /** The highest `max_tokens` this key may ask for; null means the profile's limit. */
  maxTokens: number | null;
  /** ISO 8601 timestamps, in UTC. */
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  /** When the key was replaced by a rotation; null when it never was. */
  rotatedAt: string | null;
  /** The id of the key that replaced this one. */
  replacedBy: string | null;
  /** Until when a rotated key keeps working; null with `replacedBy` set means not at all. */
  graceUntil: string | null;
  /** The key's own limits; each null field takes the profile's. Never null itself. */
  limits: StoredKeyLimits;
  /** The key's own guard rules, stricter than its profile's; null when it has none. */
  guard: KeyGuard | null;
  /** Free-form labels (owner, team, ticket); never used for decisions. */
  metadata: Record<string, string>;
}

/** What a caller chooses when creating a key; the store fills in id, hash and timestamps. */
export interface CreateKeyInput {
  name: string;
  environment: string;
  models?: string[] | null;
  maxTokens?: number | null;
  expiresAt?: string | null;
  limits?: KeyLimits | null;
  guard?: KeyGuard | null;
  metadata?: Record<string, string>;
  /** The creation time; defaults to the current time (tests pass a fixed clock). */
  now?: Date;
}

/**
 * The fields `update` may change. Identity, hash and creation time never change. In `limits`,
 * only the fields given change (null clears one); `limits: null` clears them all. `guard` is
 * replaced whole; null clears it.
 */
export type KeyPatch = Partial<
  Pick<
    VirtualKeyRecord,
    | 'name'
    | 'models'
    | 'maxTokens'
    | 'expiresAt'
    | 'revokedAt'
    | 'rotatedAt'
    | 'replacedBy'
    | 'graceUntil'
    | 'guard'
    | 'metadata'
  >
> & { limits?: KeyLimits | null };

/** Where virtual keys live. Every method resolves to null for an unknown id or hash. */
export interface KeyStore {
  /** Stores a new key; `key` is returned this once and never stored. */
  create(input: CreateKeyInput): Promise<{ record: VirtualKeyRecord; key: string }>;
  /** The key whose hash is `hash`, revoked or not. */
  findByHash(hash: string): Promise<VirtualKeyRecord | null>;
  get(id: string): Promise<VirtualKeyRecord | null>;
  /** Every key, oldest first; revoked keys only with `includeRevoked`. */
  list(options?: { includeRevoked?: boolean }): Promise<VirtualKeyRecord[]>;
  /** Marks a key revoked; revoking twice keeps the first time. */
  revoke(id: string, now?: Date): Promise<VirtualKeyRecord | null>;
  update(id: string, patch: KeyPatch): Promise<VirtualKeyRecord | null>;
  close(): Promise<void>;
}

/**
 * Tells a cache that keys may have changed elsewhere (another process or replica) since the last
 * call. Called on every authentication, so it must be cheap and synchronous: SQLite reads its
 * `data_version`; a networked store flips a flag from a pub/sub message.
 */
export type ChangeFeed = () => boolean;
