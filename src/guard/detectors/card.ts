import { isAlnum, isDigit, luhnValid } from '../checks.js';
import { type Detector, defineDetector, headPreview } from '../detector.js';

/**
 * Payment card numbers: 13 to 19 digits, written solid or in groups split by one separator
 * (4-4-4-4, 4-4-4-4-3, Amex 4-6-5, Diners 4-6-4); digits of other scripts arrive folded to
 * ASCII. A candidate must pass Luhn and start with an issuer range whose lengths it matches,
 * which rules out millisecond timestamps (13 digits starting with 1) and Luhn-valid order
 * numbers outside the card ranges. A digit run longer than 19 is an id, not a card, and is never
 * searched inside.
 */

/** True when the issuer prefix exists and allows this length. */
export function issuerAllows(d: string): boolean {
  const n = d.length;
  const p2 = Number(d.slice(0, 2));
  const p3 = Number(d.slice(0, 3));
  const p4 = Number(d.slice(0, 4));
  const p6 = Number(d.slice(0, 6));
  if (d[0] === '4') return n === 13 || n === 16 || n === 19;
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16;
  if (p2 === 34 || p2 === 37) return n === 15;
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649) || (p6 >= 622126 && p6 <= 622925)) {
    return n >= 16 && n <= 19;
  }
  if (p2 === 62 || (p4 >= 3528 && p4 <= 3589) || (p4 >= 2200 && p4 <= 2204)) {
    return n >= 16 && n <= 19;
  }
  if (p2 === 36 || (p3 >= 300 && p3 <= 305) || p2 === 38 || p2 === 39) return n >= 14 && n <= 19;
  if (
    p2 === 50 ||
    (p2 >= 56 && p2 <= 58) ||
    p4 === 6304 ||
    p4 === 6759 ||
    (p4 >= 6761 && p4 <= 6763)
  ) {
    return n >= 13 && n <= 19;
  }
  return false;
}

const REPEATED = /^(\d)\1{12,18}$/;

function validCard(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false;
  return issuerAllows(digits) && luhnValid(digits) && !REPEATED.test(digits);
}

// Group lengths of the written forms, solid numbers aside.
function groupShapeAllowed(sizes: number[]): boolean {
  if (sizes.length === 3 && sizes[0] === 4 && sizes[1] === 6)
    return sizes[2] === 4 || sizes[2] === 5;
  for (let i = 0; i < sizes.length - 1; i++) if (sizes[i] !== 4) return false;
  const last = sizes[sizes.length - 1]!;
  return last >= 1 && last <= 4;
}

// One character between groups: space, dash, dot, slash, underscore or a line break. A chain
// keeps one separator throughout, so `4111.1111-1111 1111` is not a card.
const SEPARATORS = new Set([32, 45, 46, 47, 95, 10]);

interface Group {
  start: number;
  end: number;
  // The separator before this group within its chain, or 0 when the chain starts here.
  sep: number;
}

function groupsIn(text: string, from: number, to: number): Group[] {
  const groups: Group[] = [];
  let i = from;
  while (i < to) {
    if (!isDigit(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const start = i;
    while (i < to && isDigit(text.charCodeAt(i))) i++;
    const prev = groups[groups.length - 1];
    const between = start - 1;
    const sepCode = text.charCodeAt(between);
    const joined = prev !== undefined && prev.end === between && SEPARATORS.has(sepCode);
    groups.push({ start, end: i, sep: joined ? sepCode : 0 });
  }
  return groups;
}

function blockedLeft(text: string, at: number): boolean {
  if (at === 0) return false;
  const c = text.charCodeAt(at - 1);
  return isAlnum(c) || ((c === 46 || c === 44) && at > 1 && isDigit(text.charCodeAt(at - 2)));
}

function blockedRight(text: string, at: number): boolean {
  if (at >= text.length) return false;
  const c = text.charCodeAt(at);
  return isAlnum(c) || ((c === 46 || c === 44) && isDigit(text.charCodeAt(at + 1)));
}

function digitsOf(text: string, groups: Group[], i: number, j: number): string {
  let out = '';
  for (let k = i; k <= j; k++) out += text.slice(groups[k]!.start, groups[k]!.end);
  return out;
}

/** Payment card numbers. */
export const paymentCard: Detector = defineDetector({
  id: 'payment_card',
  category: 'pii',
  severity: 'high',
  label: 'CARD',
  priority: 50,
  minDigits: 13,
  inWindow(text, from, to, _hits, emit) {
    const groups = groupsIn(text, from, to);
    for (let i = 0; i < groups.length; i++) {
      const first = groups[i]!;
      if (first.end - first.start > 19) continue;
      // Chains are only entered at a group boundary, with a clean left edge or a separator.
      if (first.sep === 0 && blockedLeft(text, first.start)) continue;
      let matched = -1;
      for (let j = Math.min(groups.length - 1, i + 4); j >= i; j--) {
        let sameSep = true;
        const sizes: number[] = [];
        for (let k = i; k <= j; k++) {
          const g = groups[k]!;
          if (k > i && (g.sep === 0 || g.sep !== groups[i + 1]!.sep)) sameSep = false;
          sizes.push(g.end - g.start);
        }
        if (!sameSep) continue;
        const last = groups[j]!;
        const next = groups[j + 1];
        if (next === undefined || next.sep === 0) {
          if (blockedRight(text, last.end)) continue;
        }
        if (j > i && !groupShapeAllowed(sizes)) continue;
        if (validCard(digitsOf(text, groups, i, j))) {
          matched = j;
          break;
        }
      }
      if (matched >= 0) {
        emit(first.start, groups[matched]!.end);
        i = matched;
      }
    }
  },
  preview: headPreview,
});
