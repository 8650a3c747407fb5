import { isAlnum, isDigit } from '../checks.js';
import { type Detector, defineDetector, headPreview, scanWindow } from '../detector.js';

/**
 * Phone numbers: international E.164 with a leading `+` (9 to 15 digits, spaces, dots, dashes
 * and a bracketed trunk `(0)` allowed), North American `(xxx) xxx-xxxx` / `xxx-xxx-xxxx`, and
 * European national numbers with a trunk `0` (UK, FR, DE and alike: 9 to 12 digits in groups
 * with one kind of separator, or French and UK mobiles written solid). Date-shaped groups
 * (`01.02.2024`) are refused.
 */

const E164 = /\+[1-9](?:[ .-]{0,2}\(?\d\)?){7,14}/g;
const NANP = /(?:\+?1[ .-])?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}/g;
const NATIONAL = /0[1-9]\d{0,4}[ ./-]\d{2,8}(?:[ .-]\d{2,8}){0,4}/g;
const MOBILE_SOLID = /0(?:[67]\d{8}|7\d{9})/g;

const NON_DIGITS = /\D/g;
const DIGITS = /\d/g;
const DATE_SEPARATOR = /[./]/;

function digitCount(value: string): number {
  let n = 0;
  for (let i = 0; i < value.length; i++) if (isDigit(value.charCodeAt(i))) n++;
  return n;
}

function cleanEdges(text: string, start: number, end: number): boolean {
  if (start > 0) {
    const c = text.charCodeAt(start - 1);
    if (isAlnum(c) || c === 43 || c === 95) return false;
    if ((c === 45 || c === 46 || c === 47) && start > 1 && isDigit(text.charCodeAt(start - 2)))
      return false;
  }
  if (end < text.length) {
    const c = text.charCodeAt(end);
    if (isAlnum(c) || c === 95) return false;
    if ((c === 45 || c === 46 || c === 47) && isDigit(text.charCodeAt(end + 1))) return false;
  }
  return true;
}

function validNanp(value: string): boolean {
  const digits = value.replace(NON_DIGITS, '');
  const local = digits.length === 11 ? digits.slice(1) : digits;
  return local.length === 10 && local[0]! >= '2' && local[3]! >= '2';
}

const GROUP_SPLIT = /[ ./-]/;

function validNational(value: string): boolean {
  const count = digitCount(value);
  if (count < 9 || count > 12) return false;
  const seps = value.replace(DIGITS, '');
  // One separator kind throughout, except a German `089/123 456`-style slash after the area.
  const rest = seps[0] === '/' ? seps.slice(1) : seps;
  for (const s of rest) if (s !== rest[0] || s === '/') return false;
  const sizes = value.split(GROUP_SPLIT).map((g) => g.length);
  if (sizes.length === 3 && sizes[0]! <= 2 && sizes[1]! <= 2) return false;
  if (
    sizes.length >= 2 &&
    sizes[sizes.length - 1] === 4 &&
    DATE_SEPARATOR.test(seps) &&
    sizes[0]! <= 2
  ) {
    return false;
  }
  return true;
}

function validE164(value: string): boolean {
  const n = digitCount(value);
  if (n < 9 || n > 15) return false;
  const open = value.split('(').length;
  return open === value.split(')').length;
}

/** Phone numbers. */
export const phoneNumber: Detector = defineDetector({
  id: 'phone_number',
  category: 'pii',
  severity: 'medium',
  label: 'PHONE',
  priority: 30,
  // Nine digits: national formats have 9 to 12 and E.164 numbers of 8 are rare, while dates
  // (`2024-05-12`, 8 digits) are everywhere and would otherwise start this detector.
  minDigits: 9,
  inWindow(text, from, to, _hits, emit) {
    const check = (valid: (v: string) => boolean) => (start: number, end: number) =>
      cleanEdges(text, start, end) && valid(text.slice(start, end));
    scanWindow(E164, text, from, to, check(validE164), emit);
    scanWindow(NANP, text, from, to, check(validNanp), emit);
    scanWindow(NATIONAL, text, from, to, check(validNational), emit);
    scanWindow(
      MOBILE_SOLID,
      text,
      from,
      to,
      check(() => true),
      emit,
    );
  },
  preview: headPreview,
});
