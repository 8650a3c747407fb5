/**
 * Virtual keys as data, and the contract every key store implements. The contract is async so
 * that a networked store (PostgreSQL) can implement it as well as the embedded SQLite one.
 */

/** Per-key limits, stored now and enforced by `limits/`; an absent field means no own limit. */
export interface KeyLimits {
  /** Requests per minute. */
  rpm?: number;
  /** Tokens per minute. */
  tpm?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  dailyTokens?: number;
  monthlyTokens?: number;
}

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
  limits: KeyLimits | null;
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
  metadata?: Record<string, string>;
  /** The creation time; defaults to the current time (tests pass a fixed clock). */
  now?: Date;
}

/** The fields `update` may change. Identity, hash and creation time never change. */
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
    | 'limits'
    | 'metadata'
  >
>;

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
