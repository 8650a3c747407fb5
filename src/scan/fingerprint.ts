import { createHash } from 'node:crypto';
import { buildView } from '../guard/normalize.js';

const VERSION = 'mistral-guard/fp/v1';
const WHITESPACE = /\s+/g;

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * SHA-256 of a found value in a canonical form: escapes decoded and look-alikes folded by the
 * guard's own view, whitespace removed. The same key written plainly, JSON-escaped or
 * URL-encoded, and a PEM block with LF, CRLF or flattened onto one line, all hash alike.
 */
export function hashSecret(raw: string): string {
  return sha256(canonicalSecret(raw));
}

/** The canonical form `hashSecret` hashes; also what value allow-patterns are tested against. */
export function canonicalSecret(raw: string): string {
  return buildView(raw).text.replace(WHITESPACE, '');
}

/**
 * The stable identity of a finding: SHA-256 over the rule, the file and the value's hash,
 * truncated to 128 bits. The line is left out so the fingerprint survives edits above the value
 * and a baseline entry keeps matching; the commit is left out so one entry covers the value in
 * the working tree and in every commit of its history at that path. The value enters only as its
 * own hash, so a fingerprint can be shown, stored and shared; a short, guessable value (a weak
 * password) could still be confirmed by someone who hashes candidates the same way, which is
 * why previews and fingerprints are all a report ever carries.
 *
 * @example
 * fingerprint('mistral_api_key', 'config/.env', hashSecret(value)); // '3f9a…' (32 hex digits)
 */
export function fingerprint(rule: string, file: string, secretHash: string): string {
  return sha256(`${VERSION}\0${rule}\0${file}\0${secretHash}`).slice(0, 32);
}
