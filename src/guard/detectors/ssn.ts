import { isAlnum, isDigit } from '../checks.js';
import { type Detector, defineDetector, scanWindow } from '../detector.js';

/**
 * US Social Security numbers written `123-45-6789` or `123 45 6789`, or as nine solid digits
 * right after an "SSN" or "social security" label. Numbers the SSA never issues are refused:
 * area 000, 666 or 900-999, group 00, serial 0000.
 */

const WRITTEN = /\d{3}([- ])\d{2}\1\d{4}/g;
const SOLID = /\d{9}/g;
const LABEL = /(?:ssn|social security(?: number)?|soc\. sec\.)[^A-Za-z0-9]{0,12}$/i;
const LABEL_REACH = 32;

const NON_DIGITS = /\D/g;

function issuable(value: string): boolean {
  const d = value.replace(NON_DIGITS, '');
  const area = Number(d.slice(0, 3));
  if (area === 0 || area === 666 || area >= 900) return false;
  return d.slice(3, 5) !== '00' && d.slice(5) !== '0000';
}

function clean(text: string, start: number, end: number): boolean {
  if (start > 0) {
    const c = text.charCodeAt(start - 1);
    if (isAlnum(c) || ((c === 45 || c === 46) && isDigit(text.charCodeAt(start - 2)))) return false;
  }
  if (end < text.length) {
    const c = text.charCodeAt(end);
    if (isAlnum(c) || ((c === 45 || c === 46) && isDigit(text.charCodeAt(end + 1)))) return false;
  }
  return true;
}

/** US Social Security numbers. */
export const usSsn: Detector = defineDetector({
  id: 'us_ssn',
  category: 'pii',
  severity: 'high',
  label: 'SSN',
  priority: 45,
  minDigits: 9,
  lookBehind: LABEL_REACH,
  inWindow(text, from, to, _hits, emit) {
    const written = (s: number, e: number) => clean(text, s, e) && issuable(text.slice(s, e));
    scanWindow(WRITTEN, text, from, to, written, emit);
    const labelled = (s: number, e: number) =>
      written(s, e) && LABEL.test(text.slice(Math.max(0, s - LABEL_REACH), s));
    scanWindow(SOLID, text, from, to, labelled, emit);
  },
  preview: () => '***-**-****',
});
