import { redactText } from '../guard/index.js';

/** What the gateway's own upstream key becomes wherever a caller's text carried it. */
export const UPSTREAM_KEY_MARK = '[REDACTED:UPSTREAM_KEY]';

// Caller texts repeat (one user agent per client library, one path per endpoint), so each
// distinct text is scanned once.
const scanned = new Map<string, string>();
const MAX_REMEMBERED = 4096;

/**
 * A text the caller chose (path, model name, user agent) with anything sensitive in it replaced:
 * what the default detectors find, and the gateway's own upstream keys, which look like any
 * other token to a detector but are known here exactly.
 */
export function safeCallerText(text: string, ownKeys: readonly string[] = []): string {
  let safe = scanned.get(text);
  if (safe === undefined) {
    safe = redactText(text).text;
    if (scanned.size >= MAX_REMEMBERED) scanned.clear();
    scanned.set(text, safe);
  }
  for (const key of ownKeys) {
    if (key.length >= 8 && safe.includes(key)) safe = safe.replaceAll(key, UPSTREAM_KEY_MARK);
  }
  return safe;
}
