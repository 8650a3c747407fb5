import { type Detector, defineDetector } from '../detector.js';

/**
 * PEM private keys (PKCS#1, PKCS#8, EC, OpenSSH, encrypted, PGP blocks), as written on several
 * lines, flattened onto one line with spaces, or with `\n` escapes (which the view has already
 * decoded). A block without its END line still counts once it carries 64 characters of body:
 * a truncated key in a prompt is as much a leak.
 */

const HEADER = /-----BEGIN (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----/y;
// The body: base64, whitespace, the `Proc-Type`/`DEK-Info` lines of legacy encrypted keys, and
// single dashes; a run of five dashes ends it. Bounded so a hit costs at most MAX_BODY steps.
const MAX_BODY = 4096;
const BODY = /(?:[A-Za-z0-9+/=\s:,.\\]|-(?!----)){0,4096}/y;
const FOOTER = /-----END (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----/y;
const MIN_BODY = 64;

function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13);
}

function base64Count(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 47 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43) n++;
  }
  return n;
}

/** PEM private key blocks. */
export const pemPrivateKey: Detector = defineDetector({
  id: 'pem_private_key',
  category: 'secret',
  severity: 'critical',
  label: 'PRIVATE_KEY',
  priority: 80,
  keywords: ['-----begin '],
  reach: 80 + MAX_BODY + 80,
  lookBehind: 1,
  onHit(text, at, emit) {
    HEADER.lastIndex = at;
    const header = HEADER.exec(text);
    if (!header) return;
    const bodyStart = at + header[0].length;
    BODY.lastIndex = bodyStart;
    const body = BODY.exec(text)![0];
    const bodyEnd = bodyStart + body.length;
    FOOTER.lastIndex = bodyEnd;
    const footer = FOOTER.exec(text);
    if (footer) {
      emit(at, bodyEnd + footer[0].length);
      return;
    }
    let end = bodyEnd;
    while (end > bodyStart && isSpace(text.charCodeAt(end - 1))) end--;
    if (base64Count(text, bodyStart, end) >= MIN_BODY) emit(at, end);
  },
  preview: () => '-----BEGIN ***',
});
