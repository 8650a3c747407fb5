import { generateVirtualKey, hashVirtualKey, randomBase62 } from './format.js';
import type {
  CreateKeyInput,
  KeyGuard,
  KeyGuardRules,
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
  guard: 'guard',
  metadata: 'metadata',
};

/** The fields a store keeps as JSON, each encoded by the store itself. */
export type JsonField = 'models' | 'guard' | 'metadata';

const JSON_FIELDS = new Set<string>(['models', 'guard', 'metadata']);

const GUARD_ACTIONS = new Set(['block', 'redact', 'flag', 'allow']);
const GUARD_CATEGORIES = new Set(['secret', 'pii']);
const DETECTOR_ID = /^[a-z0-9_]{1,64}$/;

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

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One direction's rules, checked; undefined when it sets nothing. */
function guardRules(direction: string, value: unknown): KeyGuardRules | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value)) throw new TypeError(`guard.${direction} must be an object`);
  const rules: KeyGuardRules = {};
  for (const [field, entries] of Object.entries(value)) {
    if (field !== 'categories' && field !== 'detectors') {
      throw new TypeError(`guard.${direction} may only set categories and detectors`);
    }
    if (!isPlainObject(entries))
      throw new TypeError(`guard.${direction}.${field} must be an object`);
    const known = field === 'categories' ? GUARD_CATEGORIES : null;
    const checked: Record<string, string> = {};
    for (const [name, action] of Object.entries(entries)) {
      if (known ? !known.has(name) : !DETECTOR_ID.test(name)) {
        throw new TypeError(
          field === 'categories'
            ? `guard.${direction}.categories may only name secret and pii`
            : `guard.${direction}.detectors must be keyed by detector ids such as email`,
        );
      }
      if (typeof action !== 'string' || !GUARD_ACTIONS.has(action)) {
        throw new TypeError(
          `guard.${direction}.${field} actions must be block, redact, flag or allow`,
        );
      }
      checked[name] = action;
    }
    if (Object.keys(checked).length > 0) Object.assign(rules, { [field]: checked });
  }
  return Object.keys(rules).length > 0 ? rules : undefined;
}

/**
 * A key's guard rules, checked before they reach a store; null when they set nothing, so an
 * empty object and no rules read back the same.
 */
export function guardValue(value: unknown): KeyGuard | null {
  if (value === undefined || value === null) return null;
  if (!isPlainObject(value)) throw new TypeError('guard must be an object or null');
  for (const field of Object.keys(value)) {
    if (field !== 'input' && field !== 'output') {
      throw new TypeError('guard may only set input and output');
    }
  }
  const input = guardRules('input', value.input);
  const output = guardRules('output', value.output);
  if (!input && !output) return null;
  return { ...(input && { input }), ...(output && { output }) };
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
    guard: guardValue(input.guard),
    metadata: input.metadata ?? {},
  };
  return { record, key };
}

/**
 * The columns a patch changes and their values, in the store's own encoding of its JSON
 * fields (models, guard rules, metadata). Column names come from the fixed tables above, never from the caller. Limits change
 * one by one: `{ limits: { rpm: 10 } }` leaves the other limits alone; `limits: null` clears all.
 */
export function patchColumns(
  patch: KeyPatch,
  encode: (field: JsonField, value: unknown) => unknown,
): Array<[column: string, value: unknown]> {
  const sets: Array<[string, unknown]> = [];
  for (const [field, column] of Object.entries(PATCH_COLUMNS) as [PatchField, string][]) {
    const value = patch[field];
    if (value === undefined) continue;
    const checked = field === 'guard' ? guardValue(value) : value;
    const stored = JSON_FIELDS.has(field) ? encode(field as JsonField, checked) : checked;
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

/** A JSON field as stored: text, so both databases receive the same value (metadata never null). */
export function encodeJson(field: JsonField, value: unknown): unknown {
  if (field !== 'metadata') return value == null ? null : JSON.stringify(value);
  return JSON.stringify(value ?? {});
}

/** The columns of a new key row, in the order of `insertValues`; JSON columns are marked. */
export const INSERT_COLUMNS: ReadonlyArray<{ name: string; json: boolean }> = [
  'id',
  'name',
  'hash',
  'environment',
  'models',
  'max_tokens',
  'created_at',
  'expires_at',
  'rpm',
  'tpm',
  'concurrency',
  'daily_tokens',
  'monthly_tokens',
  'guard',
  'metadata',
].map((name) => ({ name, json: name === 'models' || name === 'guard' || name === 'metadata' }));

/** The values of a new key row, one per `INSERT_COLUMNS` entry, JSON fields encoded. */
export function insertValues(record: VirtualKeyRecord): unknown[] {
  const { limits } = record;
  return [
    record.id,
    record.name,
    record.hash,
    record.environment,
    encodeJson('models', record.models),
    record.maxTokens,
    record.createdAt,
    record.expiresAt,
    limits.rpm,
    limits.tpm,
    limits.concurrency,
    limits.dailyTokens,
    limits.monthlyTokens,
    encodeJson('guard', record.guard),
    encodeJson('metadata', record.metadata),
  ];
}
