import { GuardError } from '../errors.js';
import { keyStatus } from './status.js';
import type { KeyStore, VirtualKeyRecord } from './types.js';

/** How long a rotated key keeps working when the caller does not say: a day. */
export const DEFAULT_GRACE_MS = 24 * 3_600_000;

/** The longest grace a rotation may give the old key: a year. */
export const MAX_GRACE_MS = 365 * 24 * 3_600_000;

/** What a rotation produced: the old key's record as now stored, the new one, and its secret. */
export interface RotatedKey {
  previous: VirtualKeyRecord;
  record: VirtualKeyRecord;
  /** The new key; shown this once and never stored. */
  key: string;
}

/**
 * Replaces the virtual key `id` with a new one of the same policy: name, environment, models,
 * token cap, limits, expiry, metadata and any other policy field of the record. The old key is marked `rotatedAt = now`, `replacedBy = <new id>` and
 * keeps working until `graceUntil = now + graceMs`; with `graceMs` 0 it is refused at once,
 * with `rotated_api_key`. A key that is revoked, expired or already rotated is refused
 * (`invalid_request`): rotating it would bring a dead key's policy back to life.
 *
 * The new key is created before the old one is marked, so a failure in between leaves two
 * working keys rather than none.
 *
 * @example
 * const { record, key } = await rotateVirtualKey(store, 'key_0123456789abcdef', {
 *   graceMs: 2 * 3_600_000,
 * });
 */
export async function rotateVirtualKey(
  store: KeyStore,
  id: string,
  options: { graceMs?: number; now?: Date } = {},
): Promise<RotatedKey> {
  const now = options.now ?? new Date();
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS) {
    throw new GuardError('invalid_request', {
      message: 'The grace period must be between 0 and 365 days.',
      param: 'graceSeconds',
    });
  }
  const old = await store.get(id);
  if (!old) throw new GuardError('not_found', { message: `No virtual key with id ${id}.` });
  const status = keyStatus(old, now.getTime());
  if (status !== 'active' || old.replacedBy !== null) {
    const state = old.replacedBy !== null ? 'rotated' : status;
    throw new GuardError('invalid_request', {
      message: `Key ${id} is ${state}; only an active key that was never rotated can be rotated.`,
    });
  }

  // Everything but identity, hash and lifecycle dates carries over, so a policy field added to
  // records later (a guard, say) is not silently lost by a rotation.
  const {
    id: _id,
    hash: _hash,
    createdAt: _createdAt,
    revokedAt: _revokedAt,
    rotatedAt: _rotatedAt,
    replacedBy: _replacedBy,
    graceUntil: _graceUntil,
    ...policy
  } = old;
  const { record, key } = await store.create({ ...policy, now });
  const previous = await store.update(id, {
    rotatedAt: now.toISOString(),
    replacedBy: record.id,
    graceUntil: new Date(now.getTime() + graceMs).toISOString(),
  });
  if (!previous) throw new GuardError('not_found', { message: `No virtual key with id ${id}.` });
  return { previous, record, key };
}
