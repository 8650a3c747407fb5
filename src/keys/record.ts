import { generateVirtualKey, hashVirtualKey, randomBase62 } from './format.js';
import type {
  CreateKeyInput,
  KeyLimits,
  KeyPatch,
  StoredKeyLimits,
  VirtualKeyRecord,
} from './types.js';

/** The limit fields of a record, in the order they are stored. */
export type LimitField = keyof StoredKeyLimits;

/** The patch fields other than limits, each stored in a column of its own. */
export type PatchField = Exclude<keyof KeyPatch, 'limits'>;

/** Snake-case column of each limit; the same in every store. */
export const LIMIT_COLUMNS: Record<LimitField, string> = {
  rpm: 'rpm',
  tpm: 'tpm',
  concurrency: 'concurrency',
  dailyTokens: 'daily_tokens',
  monthlyTokens: 'monthly_tokens',
};

/** Snake-case column of each patchable field; the same in every store. */
export const PATCH_COLUMNS: Record<PatchField, string> = {
  name: 'name',
  models: 'models',
  maxTokens: 'max_tokens',
  expiresAt: 'expires_at',
  revokedAt: 'revoked_at',
  rotatedAt: 'rotated_at',
  replacedBy: 'replaced_by',
  graceUntil: 'grace_until',
  metadata: 'metadata',
};

/** A new public key id: `key_` and 16 base62 characters (95 random bits). */
export function newKeyId(): string {
  return `key_${randomBase62(16)}`;
}

/** Checks one limit before it reaches SQL, so a bad value fails with its name, not a constraint. */
export function limitValue(field: LimitField, value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`limits.${field} must be a positive integer or null`);
  }
  return value;
}

/** Every limit field present, null where `limits` does not set one. */
export function storedLimits(limits: KeyLimits | null | undefined): StoredKeyLimits {
  return {
    rpm: limitValue('rpm', limits?.rpm),
    tpm: limitValue('tpm', limits?.tpm),
    concurrency: limitValue('concurrency', limits?.concurrency),
    dailyTokens: limitValue('dailyTokens', limits?.dailyTokens),
    monthlyTokens: limitValue('monthlyTokens', limits?.monthlyTokens),
  };
}

/** A new key and its record, checked and complete, ready for a store to insert. */
export function newKeyRecord(input: CreateKeyInput): { record: VirtualKeyRecord; key: string } {
  const key = generateVirtualKey();
  const record: VirtualKeyRecord = {
    id: newKeyId(),
    name: input.name,
    hash: hashVirtualKey(key),
    environment: input.environment,
    models: input.models ?? null,
    maxTokens: input.maxTokens ?? null,
    createdAt: (input.now ?? new Date()).toISOString(),
    expiresAt: input.expiresAt ?? null,
    revokedAt: null,
    rotatedAt: null,
    replacedBy: null,
    graceUntil: null,
    limits: storedLimits(input.limits),
    metadata: input.metadata ?? {},
  };
  return { record, key };
}

/**
 * The columns a patch changes and their values, in the store's own encoding of models and
 * metadata. Column names come from the fixed tables above, never from the caller. Limits change
 * one by one: `{ limits: { rpm: 10 } }` leaves the other limits alone; `limits: null` clears all.
 */
export function patchColumns(
  patch: KeyPatch,
  encode: (field: 'models' | 'metadata', value: unknown) => unknown,
): Array<[column: string, value: unknown]> {
  const sets: Array<[string, unknown]> = [];
  for (const [field, column] of Object.entries(PATCH_COLUMNS) as [PatchField, string][]) {
    const value = patch[field];
    if (value === undefined) continue;
    const stored = field === 'models' || field === 'metadata' ? encode(field, value) : value;
    sets.push([column, stored ?? null]);
  }
  if (patch.limits !== undefined) {
    for (const [field, column] of Object.entries(LIMIT_COLUMNS) as [LimitField, string][]) {
      if (patch.limits !== null && patch.limits[field] === undefined) continue;
      sets.push([column, limitValue(field, patch.limits?.[field])]);
    }
  }
  return sets;
}
