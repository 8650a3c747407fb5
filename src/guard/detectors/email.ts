import { isAlnum } from '../checks.js';
import { type Detector, defineDetector, headPreview } from '../detector.js';

/**
 * Email addresses, found from each `@` by walking outwards instead of with a regex: the walk
 * stops at 64 characters of local part and 253 of domain, so each character is read at most
 * twice whatever the input (a long run of `a@a@a@…` included).
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
const TLD = /^(?:[A-Za-z]{2,24}|xn--[A-Za-z0-9-]{1,59})$/;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

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
  while (start > 0 && isLocalChar(text.charCodeAt(start - 1))) {
    start--;
    if (at - start > MAX_LOCAL) return null;
  }
  while (start < at && text.charCodeAt(start) === 46) start++;
  if (start === at || text.charCodeAt(at - 1) === 46) return null;
  let end = at + 1;
  while (end < text.length && isDomainChar(text.charCodeAt(end))) {
    end++;
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
