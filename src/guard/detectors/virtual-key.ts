import { isWord } from '../checks.js';
import { type Detector, defineDetector, stickyAtHit } from '../detector.js';

/**
 * This project's own virtual keys: `mg_`, 32 base62 characters of randomness, then a 6-character
 * base62 checksum (`mg_` + 38 characters in all).
 */
export const VIRTUAL_KEY_PATTERN = /^mg_[0-9A-Za-z]{38}$/;

/**
 * Shape-only check of a virtual key: prefix, length and alphabet. It cannot tell a real key from
 * a look-alike with a wrong checksum.
 *
 * @example isVirtualKeyShape('mg_' + 'A1'.repeat(19)) // true
 */
export function isVirtualKeyShape(candidate: string): boolean {
  return VIRTUAL_KEY_PATTERN.test(candidate);
}

const STICKY = /mg_[0-9A-Za-z]{38}/y;

/**
 * Builds the virtual key detector. `validate` defaults to the shape check; the key module's
 * checksum check (`isWellFormedVirtualKey` in `src/keys/format.ts`) can be passed through
 * `ScanOptions.virtualKeyValidator` to report only keys the gateway could have issued.
 *
 * @example createVirtualKeyDetector(isWellFormedVirtualKey)
 */
export function createVirtualKeyDetector(
  validate: (candidate: string) => boolean = isVirtualKeyShape,
): Detector {
  return defineDetector({
    id: 'virtual_key',
    category: 'secret',
    severity: 'critical',
    label: 'VIRTUAL_KEY',
    priority: 90,
    keywords: ['mg_'],
    reach: 42,
    lookBehind: 1,
    onHit: stickyAtHit(STICKY, { left: isWord, right: isWord, validate: (v) => validate(v) }),
    preview: () => 'mg_***',
  });
}
