import { createHash } from 'node:crypto';
import { AUDIT_EVENT_FIELDS, type AuditEvent } from './event.js';

/**
 * The hash chain over the audit trail. Each stored event carries the hash of the one before it
 * and its own hash over (previous hash, sequence number, canonical event), so deleting, editing,
 * reordering or inserting a row breaks every hash after it. Verification needs nothing but the
 * rows: recompute from the genesis value (or a trusted checkpoint) and compare.
 */

/** The `prev_hash` of the first event of a trail. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * JSON with object keys sorted at every level and no whitespace: one text per value, whatever
 * the order the fields were built in. `undefined` members are left out, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  const record = value as Record<string, unknown>;
  const members: string[] = [];
  for (const key of Object.keys(record).sort()) {
    if (record[key] === undefined) continue;
    members.push(`${JSON.stringify(key)}:${canonicalJson(record[key])}`);
  }
  return `{${members.join(',')}}`;
}

/**
 * The hash of one event: SHA-256, hex, over `prevHash`, a newline and the canonical JSON of the
 * event with its `seq` added. Binding `seq` makes a swap of two rows detectable on its own.
 */
export function chainHash(prevHash: string, seq: number, event: AuditEvent): string {
  return createHash('sha256')
    .update(prevHash)
    .update('\n')
    .update(canonicalEvent(event, seq))
    .digest('hex');
}

/** An event's fields in the order `canonicalJson` sorts them, `seq` included. */
const EVENT_KEYS = [...AUDIT_EVENT_FIELDS, 'seq'].sort();

const EVENT_PREFIXES = EVENT_KEYS.map((key, i) => `${i === 0 ? '{' : ','}${JSON.stringify(key)}:`);

/**
 * `canonicalJson({ ...event, seq })`, written out field by field: the writer hashes every event,
 * and sorting the keys of each one again costs more than the rest of the hash. Any event that is
 * not exactly the known shape (a field missing, one more) takes the general path.
 */
export function canonicalEvent(event: AuditEvent, seq: number): string {
  const record = event as unknown as Record<string, unknown>;
  let keys = 0;
  for (const key in record) {
    if (record[key] === undefined) return canonicalJson({ ...event, seq });
    keys++;
  }
  if (keys !== EVENT_KEYS.length - 1 || 'seq' in record) return canonicalJson({ ...event, seq });
  let out = '';
  for (let i = 0; i < EVENT_KEYS.length; i++) {
    const key = EVENT_KEYS[i]!;
    if (!(key in record) && key !== 'seq') return canonicalJson({ ...event, seq });
    const value = key === 'seq' ? seq : record[key];
    out +=
      EVENT_PREFIXES[i] +
      (value !== null && typeof value === 'object' ? canonicalJson(value) : JSON.stringify(value));
  }
  return `${out}}`;
}

/** The fields of an event that its hash covers, picked by name from a stored row's event. */
export function hashedEvent(stored: AuditEvent): AuditEvent {
  const event: Record<string, unknown> = {};
  for (const field of AUDIT_EVENT_FIELDS) event[field] = stored[field];
  if (stored.bodies) event.bodies = stored.bodies;
  return event as unknown as AuditEvent;
}
