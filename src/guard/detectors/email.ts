import { isAlnum } from '../checks.js';
import { type Detector, defineDetector, headPreview } from '../detector.js';

/**
 * Email addresses, found from each `@` by walking outwards instead of with a regex: the walk
 * stops at 64 characters of local part and 253 of domain, so each character is read at most
 * twice whatever the input (a long run of `a@a@a@…` included). Letters, marks and digits of any
 * script count in the local part and in domain labels, as RFC 6531 allows (`jäne@exámple.com`).
 */

const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;

// Retina and asset names (`logo@2x.png`) and package specs (`pkg@1.2.3`) share the shape.
const FILE_SUFFIXES = new Set([
  'png',
  'jpg',
  'jpeg',
  'gif',
  'svg',
  'webp',
  'ico',
  'js',
  'mjs',
  'ts',
  'css',
  'map',
  'json',
]);
const TLD = /^(?:\p{L}[\p{L}\p{M}]{1,23}|xn--[A-Za-z0-9-]{1,59})$/u;
const LABEL = /^[\p{L}\p{N}](?:[\p{L}\p{M}\p{N}-]{0,61}[\p{L}\p{M}\p{N}])?$/u;
const WORD = /^[\p{L}\p{M}\p{N}]$/u;

// Code units of the letter, mark or digit outside ASCII that ends right before `at`, or 0.
function wordBefore(text: string, at: number): number {
  const c = text.charCodeAt(at - 1);
  if (c < 0x80) return 0;
  const width = c >= 0xdc00 && c < 0xe000 && at >= 2 ? 2 : 1;
  return WORD.test(text.slice(at - width, at)) ? width : 0;
}

// Code units of the letter, mark or digit outside ASCII that starts at `at`, or 0.
function wordAt(text: string, at: number): number {
  const c = text.charCodeAt(at);
  if (!(c >= 0x80)) return 0;
  const width = c >= 0xd800 && c < 0xdc00 && at + 1 < text.length ? 2 : 1;
  return WORD.test(text.slice(at, at + width)) ? width : 0;
}

function isLocalChar(c: number): boolean {
  return isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
}

function isDomainChar(c: number): boolean {
  return isAlnum(c) || c === 46 || c === 45;
}

function validDomain(domain: string): boolean {
  const labels = domain.split('.');
  if (labels.length < 2) return false;
  const tld = labels[labels.length - 1]!;
  if (!TLD.test(tld) || FILE_SUFFIXES.has(tld.toLowerCase())) return false;
  for (const label of labels) if (!LABEL.test(label)) return false;
  return true;
}

function findAt(text: string, at: number): [number, number] | null {
  let start = at;
  while (start > 0) {
    const step = isLocalChar(text.charCodeAt(start - 1)) ? 1 : wordBefore(text, start);
    if (step === 0) break;
    start -= step;
    if (at - start > MAX_LOCAL) return null;
  }
  while (start < at && text.charCodeAt(start) === 46) start++;
  if (start === at || text.charCodeAt(at - 1) === 46) return null;
  let end = at + 1;
  while (end < text.length) {
    const step = isDomainChar(text.charCodeAt(end)) ? 1 : wordAt(text, end);
    if (step === 0) break;
    end += step;
    if (end - at - 1 > MAX_DOMAIN) return null;
  }
  // A sentence may end right after the address.
  while (end > at + 1 && (text.charCodeAt(end - 1) === 46 || text.charCodeAt(end - 1) === 45))
    end--;
  if (end < text.length && (text.charCodeAt(end) === 64 || text.charCodeAt(end) === 95))
    return null;
  if (!validDomain(text.slice(at + 1, end))) return null;
  if (text.slice(start, at).includes('..')) return null;
  return [start, end];
}

/** Email addresses. */
export const email: Detector = defineDetector({
  id: 'email',
  category: 'pii',
  severity: 'medium',
  label: 'EMAIL',
  priority: 40,
  keywords: ['@'],
  lead: MAX_LOCAL + 1,
  reach: MAX_DOMAIN + 2,
  tailHold: MAX_LOCAL + 2,
  lookBehind: MAX_LOCAL + 2,
  onHit(text, at, emit) {
    const span = findAt(text, at);
    if (span) emit(span[0], span[1]);
  },
  preview: headPreview,
});
