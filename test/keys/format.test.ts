import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  generateVirtualKey,
  hashVirtualKey,
  isWellFormedVirtualKey,
  VIRTUAL_KEY_LENGTH,
  VIRTUAL_KEY_PREFIX,
} from '../../src/keys/format.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function swapChar(key: string, at: number): string {
  const current = key[at]!;
  const replacement = BASE62[(BASE62.indexOf(current) + 1) % 62]!;
  return key.slice(0, at) + replacement + key.slice(at + 1);
}

test('a new key is the prefix, 32 random base62 characters and a 6-character checksum', () => {
  const key = generateVirtualKey();
  assert.equal(VIRTUAL_KEY_PREFIX, 'mg_');
  assert.equal(VIRTUAL_KEY_LENGTH, 41);
  assert.equal(key.length, VIRTUAL_KEY_LENGTH);
  assert.match(key, /^mg_[0-9A-Za-z]{38}$/);
  assert.ok(isWellFormedVirtualKey(key));
});

test('new keys do not repeat', () => {
  const keys = new Set(Array.from({ length: 2000 }, () => generateVirtualKey()));
  assert.equal(keys.size, 2000);
});

test('random characters are spread evenly over the alphabet, without modulo bias', () => {
  const counts = new Map<string, number>();
  const keys = 3000;
  for (let i = 0; i < keys; i++) {
    for (const c of generateVirtualKey().slice(3, 35)) counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  assert.equal(counts.size, 62);
  const expected = (keys * 32) / 62;
  let chiSquare = 0;
  for (const c of BASE62) chiSquare += ((counts.get(c) ?? 0) - expected) ** 2 / expected;
  // 61 degrees of freedom: 135 is exceeded by chance about once in a million runs, while a
  // `byte % 62` sampler (its first 8 characters 25% more likely) scores about 600 here.
  assert.ok(chiSquare < 135, `chi-square ${chiSquare.toFixed(1)}`);
});

test('changing any one character of a key makes it malformed', () => {
  const key = generateVirtualKey();
  for (let at = VIRTUAL_KEY_PREFIX.length; at < key.length; at++) {
    assert.equal(isWellFormedVirtualKey(swapChar(key, at)), false, `position ${at}`);
  }
});

test('values without the prefix, length or alphabet of a key are malformed', () => {
  const key = generateVirtualKey();
  const malformed: unknown[] = [
    undefined,
    null,
    42,
    '',
    key.slice(0, -1),
    `${key}0`,
    `mk_${key.slice(3)}`,
    `MG_${key.slice(3)}`,
    `${key.slice(0, 10)}-${key.slice(11)}`,
    `${key.slice(0, 10)}é${key.slice(11)}`,
    ` ${key}`,
    'Xq7dK2pLm9Rt4vWz8bNc3fGh6jYs1aEu',
  ];
  for (const value of malformed) assert.equal(isWellFormedVirtualKey(value), false);
});

test('the stored hash is the SHA-256 hex of the key and differs from key to key', () => {
  const key = generateVirtualKey();
  assert.match(hashVirtualKey(key), /^[0-9a-f]{64}$/);
  assert.equal(hashVirtualKey(key), hashVirtualKey(key));
  assert.notEqual(hashVirtualKey(key), hashVirtualKey(generateVirtualKey()));
  // The FIPS 180-2 test vector for "abc".
  assert.equal(
    hashVirtualKey('abc'),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  );
});
