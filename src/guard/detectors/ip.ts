import { isAlnum, isDigit } from '../checks.js';
import { type Detector, defineDetector, scanWindow } from '../detector.js';

/**
 * IPv4 addresses. Off by default: version numbers and OIDs share the dotted shape, and most
 * addresses in prompts are not personal data. Enable with `enable: ['ip_address']`.
 */

// TODO: IPv6 addresses are not detected; a prompt with `2001:db8::1` passes unreported until an
// IPv6 pattern is added and a corpus case for it passes.
const IPV4 = /(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)/g;

function clean(text: string, start: number, end: number): boolean {
  if (start > 0) {
    const c = text.charCodeAt(start - 1);
    if (isAlnum(c) || c === 46) return false;
  }
  if (end < text.length) {
    const c = text.charCodeAt(end);
    if (isAlnum(c) || (c === 46 && isDigit(text.charCodeAt(end + 1)))) return false;
  }
  return true;
}

/** IPv4 addresses (opt-in). */
export const ipAddress: Detector = defineDetector({
  id: 'ip_address',
  category: 'pii',
  severity: 'low',
  label: 'IP',
  priority: 20,
  optIn: true,
  minDigits: 4,
  inWindow(text, from, to, _hits, emit) {
    scanWindow(IPV4, text, from, to, (s, e) => clean(text, s, e), emit);
  },
  preview: (v) => `${v.slice(0, 2)}***`,
});
