import { GuardError } from '../errors.js';
import { redactText } from '../guard/index.js';

/** What the gateway's own upstream key becomes wherever a caller's text carried it. */
const UPSTREAM_KEY_MARK = '[REDACTED:UPSTREAM_KEY]';

// Caller texts repeat (one user agent per client library, one path per endpoint), so each
// distinct text is scanned once.
const scanned = new Map<string, string>();
const MAX_REMEMBERED = 4096;
const PERCENT_BYTE = /%[0-9A-Fa-f]{2}/g;

/**
 * `text` with every one of the gateway's own upstream keys replaced, written plainly or, unless
 * `literal`, percent-encoded (as in a path; the text is then returned decoded). Detectors cannot
 * tell such a key from any other token; the gateway knows its keys exactly.
 */
export function replaceOwnKeys(text: string, ownKeys: readonly string[], literal = false): string {
  let out = text;
  for (const key of ownKeys) {
    if (key.length >= 8 && out.includes(key)) out = out.replaceAll(key, UPSTREAM_KEY_MARK);
  }
  if (literal || ownKeys.length === 0 || !out.includes('%')) return out;
  // Each escape decodes to one byte: enough for keys, which are ASCII.
  const decoded = out.replace(PERCENT_BYTE, (byte) =>
    String.fromCharCode(Number.parseInt(byte.slice(1), 16)),
  );
  return ownKeys.some((key) => key.length >= 8 && decoded.includes(key))
    ? replaceOwnKeys(decoded, ownKeys)
    : out;
}

/**
 * A text the caller chose (path, model name, user agent) with anything sensitive in it replaced:
 * what the default detectors find, and the gateway's own upstream keys.
 */
export function safeCallerText(
  text: string,
  ownKeys: readonly string[] = [],
  remember = true,
): string {
  let safe = scanned.get(text);
  if (safe === undefined) {
    safe = redactText(text).text;
    if (remember) {
      if (scanned.size >= MAX_REMEMBERED) scanned.clear();
      scanned.set(text, safe);
    }
  }
  return ownKeys.length === 0 ? safe : replaceOwnKeys(safe, ownKeys);
}

/**
 * True when a caller's text holds something `safeCallerText` would replace. `remember: false`
 * for texts that never repeat (request ids), so they do not push out the ones that do.
 */
export function holdsSecret(
  text: string,
  ownKeys: readonly string[] = [],
  remember = true,
): boolean {
  return safeCallerText(text, ownKeys, remember) !== text;
}

/**
 * Refuses a query string whose parameter names or values hold what looks like a secret. Values
 * are checked one by one, decoded (`+` as a space), so a pagination token is judged by its own
 * shape, not by the word `token` in its name.
 */
export function refuseSecretInQuery(query: string, ownKeys: readonly string[]): void {
  if (query.length <= 1) return;
  for (const [name, value] of new URLSearchParams(query)) {
    refuseSecretIn(name, 'path', ownKeys);
    refuseSecretIn(value, 'path', ownKeys, { remember: false });
  }
}

/**
 * Refuses a request whose `field` (a model name, a path) holds what looks like a secret, such as
 * a key pasted into the wrong place. Those travel to the upstream as written, so the request is
 * refused rather than sent; the message names the field, never its value. `remember: false` for
 * texts that seldom repeat.
 */
export function refuseSecretIn(
  text: string,
  field: string,
  ownKeys: readonly string[],
  { remember = true }: { remember?: boolean } = {},
): void {
  if (!holdsSecret(text, ownKeys, remember)) return;
  throw new GuardError('invalid_request', {
    message: `${field} holds what looks like a secret; the request was not sent.`,
    param: field,
  });
}

/**
 * Refuses a body whose `model` or `agent_id` holds what looks like a secret: both travel to the
 * upstream as written, so the request is refused rather than sent.
 */
export function refuseSecretInTarget(body: unknown, ownKeys: readonly string[]): void {
  if (typeof body !== 'object' || body === null) return;
  const { model, agent_id: agentId } = body as { model?: unknown; agent_id?: unknown };
  if (typeof model === 'string') refuseSecretInName(model, 'model', ownKeys);
  if (typeof agentId === 'string') refuseSecretInName(agentId, 'agent_id', ownKeys);
}

/** The most `-` or `_` joints of a name that are looked behind. */
const MAX_JOINTS = 16;

/**
 * Refuses a name holding a secret, also one glued to it with `-` or `_`
 * (`mistral-small-sk-proj-…`): detectors want a word boundary before a key, so each tail after
 * such a joint is looked at on its own too.
 */
export function refuseSecretInName(name: string, field: string, ownKeys: readonly string[]): void {
  refuseSecretIn(name, field, ownKeys);
  let joints = 0;
  for (let i = 0; i < name.length && joints < MAX_JOINTS; i++) {
    const c = name.charCodeAt(i);
    if (c !== 45 && c !== 95) continue; // '-', '_'
    joints++;
    if (i + 1 < name.length) refuseSecretIn(name.slice(i + 1), field, ownKeys);
  }
}
