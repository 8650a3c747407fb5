import { type Detector, defineDetector, stickyAtHit } from '../detector.js';

/**
 * JSON Web Tokens: three base64url parts whose header decodes to a JSON object naming an `alg`.
 * Every JWT header starts with `{"`, which base64url-encodes to `eyJ`, the pre-filter keyword.
 * Size caps (header 512, payload 4096, signature 1024 characters) bound the work per hit and the
 * stream hold-back; a larger token is not reported.
 */

const JWT = /eyJ[A-Za-z0-9_-]{8,509}\.[A-Za-z0-9_-]{2,4096}\.[A-Za-z0-9_-]{0,1024}/y;
const MIN_SIGNATURE = 16;

function isJwtChar(code: number): boolean {
  return (
    (code >= 48 && code <= 57) ||
    (code >= 65 && code <= 90) ||
    (code >= 97 && code <= 122) ||
    code === 45 ||
    code === 95 ||
    code === 46
  );
}

function headerAlg(header: string): string | null {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    if (parsed === null || typeof parsed !== 'object') return null;
    const alg = (parsed as Record<string, unknown>).alg;
    return typeof alg === 'string' ? alg : null;
  } catch {
    // Not JSON: not a JWT. The parse error quotes the input, so it is dropped here.
    return null;
  }
}

function validJwt(value: string): boolean {
  const firstDot = value.indexOf('.');
  const alg = headerAlg(value.slice(0, firstDot));
  if (alg === null) return false;
  const signature = value.slice(value.lastIndexOf('.') + 1);
  return alg.toLowerCase() === 'none' || signature.length >= MIN_SIGNATURE;
}

// The token must end where the base64url run ends; a single `.` may follow when it ends a
// sentence rather than opening a fourth part.
function validAt(value: string, text: string, _start: number, end: number): boolean {
  const next = text.charCodeAt(end);
  if (end < text.length && isJwtChar(next)) {
    if (next !== 46 || (end + 1 < text.length && isJwtChar(text.charCodeAt(end + 1)))) return false;
  }
  return validJwt(value);
}

/** JWTs, signed or `alg: none`. */
export const jwt: Detector = defineDetector({
  id: 'jwt',
  category: 'secret',
  severity: 'high',
  label: 'JWT',
  priority: 60,
  keywords: ['eyj'],
  reach: 512 + 4096 + 1024 + 3,
  lookBehind: 1,
  onHit: stickyAtHit(JWT, { left: isJwtChar, validate: validAt }),
  preview: () => 'eyJ***',
});
