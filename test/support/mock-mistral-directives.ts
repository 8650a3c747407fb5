// Prompt directives let a test steer the loopback server through a gateway, which forwards only
// the request body. They are read from the last user message (chat, agents), the FIM prompt or
// the inputs (embeddings, moderations, classifications):
//   [[echo]]           reply with the prompt itself, directives removed, trimmed
//   [[reply:TEXT]]     reply with TEXT verbatim: everything up to the first `]]`
//   [[chunk:N]]        stream the reply in pieces of N characters (default: three words a piece)
//   [[fault:MODE]]     act out a fault for this request only; `MODE:N` sets its number
//   [[flag:CATEGORY]]  moderation and classification score CATEGORY high
// Parsing walks the text with indexOf, so a prompt without `[[` costs one scan and no regex is
// compiled or run per request.

/** Fault modes the loopback server can act out; see `Fault` for what each sends on the wire. */
export type FaultMode =
  | '500'
  | '429'
  | 'reset'
  | 'hang'
  | 'malformed'
  | 'stream-cut'
  | 'slow-first-byte'
  | 'stream-stall';

/**
 * A failure to act out instead of (or on top of) the normal answer.
 *
 * - `500`: a Mistral-shaped server error; `status` picks 502, 503 or 504 instead.
 * - `429`: the live rate-limit body with `Retry-After: retryAfterSeconds` (default 1).
 * - `reset`: the socket is reset (RST) after the request is read, before any byte of answer.
 * - `hang`: the request is read and never answered; `close()` still ends it.
 * - `malformed`: 200 with `application/json` and a body that is not valid JSON.
 * - `stream-cut`: a stream sends its first events, then the socket is destroyed; a plain answer
 *   sends its headers and half its body, then the socket is destroyed.
 * - `slow-first-byte`: waits `delayMs` (default 1000) before the normal answer.
 * - `stream-stall`: a stream sends its first event and then nothing; a plain answer sends its
 *   headers and half its body and then nothing.
 *
 * `count` limits how many authenticated requests the fault applies to (default: all).
 */
export interface Fault {
  mode: FaultMode;
  count?: number;
  retryAfterSeconds?: number;
  status?: number;
  delayMs?: number;
}

/** What a prompt asked of the server; `text` is the prompt with directives removed, trimmed. */
export interface Directives {
  echo: boolean;
  reply: string | undefined;
  chunk: number | undefined;
  fault: Fault | undefined;
  flags: string[];
  text: string;
}

/** Directives of a prompt that carries none, shared so the common path allocates nothing. */
export const NO_DIRECTIVES: Readonly<Directives> = Object.freeze({
  echo: false,
  reply: undefined,
  chunk: undefined,
  fault: undefined,
  flags: Object.freeze([]) as unknown as string[],
  text: '',
});

const FAULT_MODES = new Set<string>([
  '500',
  '429',
  'reset',
  'hang',
  'malformed',
  'stream-cut',
  'slow-first-byte',
  'stream-stall',
]);

/**
 * Reads `MODE` or `MODE:N`. A 5xx status as the mode (`503`) means mode `500` with that status;
 * N is `retryAfterSeconds` for `429` and `delayMs` for `slow-first-byte`.
 */
export function parseFaultSpec(spec: string): Fault | undefined {
  const colon = spec.indexOf(':');
  const mode = colon === -1 ? spec : spec.slice(0, colon);
  const n = colon === -1 ? undefined : Number(spec.slice(colon + 1));
  const arg = n !== undefined && Number.isFinite(n) && n >= 0 ? n : undefined;
  const status = Number(mode);
  if (mode.length === 3 && status >= 500 && status <= 599) return { mode: '500', status };
  if (!FAULT_MODES.has(mode)) return undefined;
  const fault: Fault = { mode: mode as FaultMode };
  if (mode === '429' && arg !== undefined) fault.retryAfterSeconds = arg;
  if (mode === 'slow-first-byte' && arg !== undefined) fault.delayMs = arg;
  return fault;
}

/** Finds every directive in `prompt`; unknown `[[...]]` spans stay in the text untouched. */
export function parseDirectives(prompt: string): Directives {
  if (!prompt.includes('[[')) return { ...NO_DIRECTIVES, flags: [], text: prompt.trim() };
  const out: Directives = { ...NO_DIRECTIVES, flags: [], text: '' };
  let kept = '';
  let from = 0;
  for (let open = prompt.indexOf('[['); open !== -1; open = prompt.indexOf('[[', from)) {
    const close = prompt.indexOf(']]', open + 2);
    if (close === -1) break;
    const body = prompt.slice(open + 2, close);
    if (!applyDirective(out, body)) {
      kept += prompt.slice(from, close + 2);
      from = close + 2;
      continue;
    }
    kept += prompt.slice(from, open);
    from = close + 2;
  }
  out.text = (kept + prompt.slice(from)).trim();
  return out;
}

function applyDirective(out: Directives, body: string): boolean {
  if (body === 'echo') {
    out.echo = true;
    return true;
  }
  const colon = body.indexOf(':');
  if (colon === -1) return false;
  const name = body.slice(0, colon);
  const value = body.slice(colon + 1);
  if (name === 'reply') out.reply = value;
  else if (name === 'chunk') {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) return false;
    out.chunk = n;
  } else if (name === 'fault') {
    const fault = parseFaultSpec(value);
    if (!fault) return false;
    out.fault = fault;
  } else if (name === 'flag') out.flags.push(value);
  else return false;
  return true;
}
