import type { VirtualKeyRecord } from './types.js';

/** Whether a key works at a given time, and if not, why. */
export type KeyStatus = 'active' | 'revoked' | 'rotated' | 'expired';

/** Dates that do not parse count as already passed, so a damaged row fails closed. */
function passed(iso: string, now: number): boolean {
  const at = Date.parse(iso);
  return Number.isNaN(at) || at <= now;
}

/**
 * The status of `record` at `now` (ms since the epoch). Revocation wins over rotation, and
 * rotation over expiry, so a caller is told the most deliberate reason first. A rotated key is
 * still active until its grace period ends.
 */
export function keyStatus(record: VirtualKeyRecord, now: number): KeyStatus {
  if (record.revokedAt !== null) return 'revoked';
  const graceOver = record.graceUntil === null || passed(record.graceUntil, now);
  if (record.replacedBy !== null && graceOver) return 'rotated';
  if (record.expiresAt !== null && passed(record.expiresAt, now)) return 'expired';
  return 'active';
}
