import { createHash } from 'node:crypto';
import type { Secret } from '../config/secret.js';

const MISTRAL_KEY = /^[A-Za-z0-9]{32}$/;

/**
 * True when the value has the shape of a Mistral API key: 32 letters and digits. A value of
 * another shape is usually the wrong thing (a whole JSON secret, another field, a placeholder,
 * stray quotes), and sending it upstream would hand that value to a third party.
 *
 * @example
 * hasKeyShape(new Secret('x'.repeat(32), 'test')); // true
 */
export function hasKeyShape(key: Secret): boolean {
  return MISTRAL_KEY.test(key.reveal());
}

/**
 * A short, stable name for a key, safe to log and show: 12 hex digits of a domain-separated
 * SHA-256. It tells two keys apart and matches a key across replicas and the audit trail;
 * 48 bits of a hash of a 190-bit random key give nothing away.
 *
 * @example
 * keyFingerprint(secret); // 'a41f09c2e7b3'
 */
export function keyFingerprint(key: Secret): string {
  const hash = createHash('sha256').update('mistral-guard/upstream-key/v1\0');
  return hash.update(key.reveal(), 'utf8').digest('hex').slice(0, 12);
}
