import { ibanChecksumValid, isAlnum } from '../checks.js';
import { type Detector, defineDetector, scanWindow } from '../detector.js';

/**
 * IBANs, solid or printed in groups of four, checked against the length registered for their
 * country and the ISO 13616 mod-97 checksum.
 */

// ISO 13616 registry: IBAN length per country code.
const LENGTHS: Record<string, number> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  LY: 25,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MR: 27,
  MT: 31,
  MU: 30,
  NL: 18,
  NO: 15,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  SA: 24,
  SC: 31,
  SD: 18,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  ST: 25,
  SV: 28,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  XK: 20,
};
const MAX_PRINTED = 34 + 8;
const START = /[A-Z]{2}\d{2}/g;

function isIbanChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90);
}

// Collects the IBAN characters from `start`, allowing one space after each group of four.
function endOf(text: string, start: number, length: number): number {
  let taken = 0;
  let i = start;
  while (taken < length && i < text.length) {
    const c = text.charCodeAt(i);
    if (isIbanChar(c)) {
      taken++;
      i++;
    } else if (c === 32 && taken % 4 === 0 && isIbanChar(text.charCodeAt(i + 1))) {
      i++;
    } else {
      return -1;
    }
  }
  return taken === length ? i : -1;
}

/** IBANs. */
export const iban: Detector = defineDetector({
  id: 'iban',
  category: 'pii',
  severity: 'high',
  label: 'IBAN',
  priority: 55,
  // Every registered IBAN format holds a run of at least ten digits in groups of four.
  minDigits: 10,
  lookBehind: MAX_PRINTED,
  inWindow(text, from, to, _hits, emit) {
    const end = Math.min(text.length, to + MAX_PRINTED);
    const accept = (start: number): boolean => {
      if (start > 0 && isAlnum(text.charCodeAt(start - 1))) return false;
      const length = LENGTHS[text.slice(start, start + 2)];
      if (length === undefined) return false;
      const stop = endOf(text, start, length);
      if (stop < 0 || (stop < text.length && isAlnum(text.charCodeAt(stop)))) return false;
      if (!ibanChecksumValid(text.slice(start, stop).replaceAll(' ', ''))) return false;
      emit(start, stop);
      return true;
    };
    scanWindow(
      START,
      text,
      from,
      end,
      (start) => accept(start),
      () => {},
    );
  },
  preview: (v) => `${v.slice(0, 2)}***`,
});
