import { scanWith } from './engine.js';
import { failClosed, inspectionFailed } from './errors.js';
import { applyRedactions, scannerFor } from './scanner.js';
import type { Finding, ScanOptions } from './types.js';

/** A redactor for text that arrives in pieces, such as a streamed completion. */
export interface StreamRedactor {
  /** Adds a piece; returns the redacted text that is safe to release now (maybe empty). */
  push(piece: string): string;
  /** Ends the stream; returns the rest, redacted. */
  end(): string;
  /** Findings so far, with offsets into the whole stream as received. */
  readonly findings: readonly Finding[];
  /** The most characters of input this redactor ever holds back. */
  readonly maxHoldBack: number;
}

/** How a stream redactor treats what it finds. */
export interface StreamRedactorBehaviour {
  /**
   * Which findings to replace; the others are released as written (still listed in `findings`,
   * and still held back until complete, so a caller can decide on them before they leave).
   * Every finding when omitted.
   */
  redactIf?: (finding: Finding) => boolean;
}

// A push rescans only once the held text has grown by this many characters, or by an eighth of
// what the last scan held back if that is more. Each scan costs the held text plus the left
// context, so the growth between scans pays for it: the work stays linear in the input.
const RESCAN_MIN = 16;

function rescanAfter(held: number): number {
  return Math.max(RESCAN_MIN, held >> 3);
}

/**
 * Creates a stream redactor whose output, concatenated, equals `redactText` of the whole input.
 *
 * How it stays equal: a scan covers the unreleased text plus a tail of released text as left
 * context, and reports a stable point before which nothing can change any more. Normally that
 * is a short tail behind the end (the `baseHoldBack` of the rules, under 100 characters for the
 * built-in set); when a keyword, an `@` or a base64 run near the end could still become a value,
 * the point moves back to it, at most the rules' `maxHoldBack` characters (about 5.6K for the
 * built-in set, set by the JWT size cap). A value is released whole or not at all.
 *
 * A push rescans only when the held text has grown by max(16, held / 8) characters since the
 * last scan, which keeps the work linear however small the pieces. The hold-back is therefore
 * bounded by `maxHoldBack` of the rules plus max(16, that / 8): about 6.3K for the built-in set,
 * and about 100 characters on plain prose. Both figures count normalised characters, so input
 * written as escapes (`\u0041`) may hold up to six times as many characters of the original.
 *
 * @example
 * const r = createStreamRedactor();
 * r.push('card 4111 1111 ') + r.push('1111 1111 ok') + r.end(); // 'card [REDACTED:CARD] ok'
 */
export function createStreamRedactor(
  options?: ScanOptions,
  behaviour: StreamRedactorBehaviour = {},
): StreamRedactor {
  const { rules } = scannerFor(options);
  const redactIf = behaviour.redactIf;
  const contextSize = rules.lookBehind;
  let context = '';
  let pending = '';
  let released = 0;
  // Length of `pending` right after the last scan, and how much has been pushed since.
  let heldAfterScan = 0;
  let grown = 0;
  const findings: Finding[] = [];

  const release = (final: boolean): string => {
    const text = context + pending;
    const outcome = scanWith(rules, text, { final, leftCut: released > context.length });
    let cut = final ? text.length : outcome.stable;
    if (cut < context.length) cut = context.length;
    const fresh = outcome.findings.filter((f) => f.start >= context.length && f.end <= cut);
    const offset = released - context.length;
    for (const f of fresh) findings.push({ ...f, start: f.start + offset, end: f.end + offset });
    const shifted = fresh.map((f) => ({
      ...f,
      start: f.start - context.length,
      end: f.end - context.length,
    }));
    const out = applyRedactions(
      text.slice(context.length, cut),
      redactIf ? shifted.filter(redactIf) : shifted,
    );
    const emitted = text.slice(context.length, cut);
    released += emitted.length;
    context = (context + emitted).slice(-contextSize);
    pending = text.slice(cut);
    heldAfterScan = pending.length;
    grown = 0;
    return out;
  };

  return {
    push(piece) {
      if (typeof piece !== 'string') throw inspectionFailed(new TypeError('piece is not a string'));
      pending += piece;
      grown += piece.length;
      if (pending.length <= rules.baseHoldBack) return '';
      if (grown < rescanAfter(heldAfterScan)) return '';
      return failClosed(() => release(false));
    },
    end() {
      return failClosed(() => release(true));
    },
    get findings() {
      return findings;
    },
    maxHoldBack: rules.maxHoldBack + rescanAfter(rules.maxHoldBack),
  };
}

/**
 * Redacts an async stream of text pieces, yielding only what is safe to release.
 *
 * @example
 * for await (const safe of redactStream(completionPieces)) res.write(safe);
 */
export async function* redactStream(
  pieces: AsyncIterable<string>,
  options?: ScanOptions,
): AsyncIterable<string> {
  const redactor = createStreamRedactor(options);
  for await (const piece of pieces) {
    const out = redactor.push(piece);
    if (out.length > 0) yield out;
  }
  const rest = redactor.end();
  if (rest.length > 0) yield rest;
}
