/**
 * Validators shared by detectors: checksums, entropy and character-class tests. They take the
 * candidate as a view slice and never keep or report it.
 */

/** Shannon entropy of `value` in bits per character. */
export function entropy(value: string): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / value.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** Which of lower case, upper case, digits and other characters `value` contains, as bits. */
export function charClasses(value: string): number {
  let mask = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 97 && c <= 122) mask |= LOWER;
    else if (c >= 65 && c <= 90) mask |= UPPER;
    else if (c >= 48 && c <= 57) mask |= DIGIT;
    else mask |= OTHER;
  }
  return mask;
}

export const LOWER = 1;
export const UPPER = 2;
export const DIGIT = 4;
export const OTHER = 8;

/** How many of the four classes are present. */
export function classCount(mask: number): number {
  return (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1) + ((mask >> 3) & 1);
}

/** True when `value` is one character repeated, as in placeholder values like `xxxxxxxx`. */
export function isTrivialRun(value: string): boolean {
  for (let i = 1; i < value.length; i++) if (value[i] !== value[0]) return false;
  return true;
}

/** True when `value` is lower-case hexadecimal or upper-case hexadecimal only. */
export function isHex(value: string): boolean {
  return /^(?:[0-9a-f]+|[0-9A-F]+)$/.test(value);
}

/** Luhn checksum over the digits of `digits` (separators already removed). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97 = 1. */
export function ibanChecksumValid(iban: string): boolean {
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (let i = 0; i < moved.length; i++) {
    const c = moved.charCodeAt(i);
    if (c >= 48 && c <= 57) rest = (rest * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) rest = (rest * 100 + (c - 55)) % 97;
    else return false;
  }
  return rest === 1;
}

/** Character code predicates used for boundary checks. */
export function isAlnum(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

export function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** Letters, digits and `_`: the characters of an identifier or a token body. */
export function isWord(code: number): boolean {
  return isAlnum(code) || code === 95;
}

/** Identifier characters plus `-`, as in `sk-proj-…` and base64url. */
export function isToken(code: number): boolean {
  return isWord(code) || code === 45;
}
