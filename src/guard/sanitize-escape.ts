/**
 * The sanitiser's last step, which makes it safe by construction rather than by its list of
 * recognised constructs: in any text it did not verify, nothing may still render as an image or a
 * tag. Every `![` becomes `!\[` (a CommonMark escape: the text shows, no image loads) and every
 * `<` that could open a tag becomes `&lt;`. Verified pieces, such as the delimiters and URL of an
 * allowed link, pass unchanged, but a `!` beside one still cannot form an image with it.
 */

// Tags that load something or carry a URL attribute, escaped even when HTML is otherwise kept.
const LOADING_TAGS = [
  'a',
  'applet',
  'audio',
  'base',
  'body',
  'embed',
  'form',
  'frame',
  'frameset',
  'iframe',
  'image',
  'img',
  'input',
  'link',
  'math',
  'meta',
  'object',
  'picture',
  'portal',
  'script',
  'source',
  'style',
  'svg',
  'table',
  'track',
  'video',
].join('|');
const LONGEST_TAG = 8;

// A `!` before `[`, or a `<` that opens a tag: any tag, or only the loading ones.
const ANY_TAG = /!(?=\[)|<(?=[A-Za-z/!?])/g;
const LOADING_TAG = new RegExp(`!(?=\\[)|<(?=/?(?:${LOADING_TAGS})(?![A-Za-z0-9-]))`, 'gi');
// The tail of a text whose last `<` may still grow into a loading tag's name.
const OPEN_NAME = new RegExp(`</?[A-Za-z0-9-]{0,${LONGEST_TAG}}$`);

/**
 * Escapes free text as it is written, in order, between verified pieces. Whether a `<` opens a
 * tag depends on what follows it, so the free text after the last such `<` waits for the next
 * piece; the output, concatenated, is the same however the text was split.
 */
export class Escaper {
  readonly #pattern: RegExp;
  readonly #anyTag: boolean;
  #out = '';
  // Free text not yet written because its `<` is not decided yet.
  #held = '';
  // The last character written is a `!` whose next character was not known then.
  #bang = false;

  /** `anyTag` escapes every tag opening; otherwise only tags that load or link something. */
  constructor(anyTag: boolean) {
    this.#anyTag = anyTag;
    this.#pattern = anyTag ? ANY_TAG : LOADING_TAG;
  }

  /** Adds text the sanitiser did not verify. */
  free(text: string): void {
    if (text.length === 0) return;
    this.#held += text;
    this.#drain(undefined);
  }

  /** Adds a verified piece, written as it is. */
  kept(text: string): void {
    if (text.length === 0) return;
    this.#drain(text);
    this.#write(text);
    this.#bang = text.endsWith('!');
  }

  /** What is ready to release, removed from the output. */
  take(): string {
    const out = this.#out;
    this.#out = '';
    return out;
  }

  /** Writes what was held and returns the rest of the output. */
  end(): string {
    this.#drain('');
    return this.take();
  }

  // Escapes and writes held free text; `next` is what follows it, or undefined when unknown.
  #drain(next: string | undefined): void {
    const held = this.#held;
    if (held.length === 0) return;
    let ready = held.length;
    if (next === undefined) {
      const open = this.#anyTag ? (held.endsWith('<') ? 1 : 0) : openNameLength(held);
      ready -= open;
    }
    if (ready === 0) return;
    const full = next === undefined ? held : held + next;
    const pattern = this.#pattern;
    let out = '';
    let at = 0;
    pattern.lastIndex = 0;
    for (let m = pattern.exec(full); m !== null && m.index < ready; m = pattern.exec(full)) {
      out += held.slice(at, m.index) + (m[0] === '!' ? '!\\' : '&lt;');
      at = m.index + 1;
    }
    out += held.slice(at, ready);
    this.#write(out);
    this.#bang = ready === full.length && out.endsWith('!');
    this.#held = held.slice(ready);
  }

  #write(text: string): void {
    if (this.#bang && text.startsWith('[')) this.#out += '\\';
    this.#out += text;
    this.#bang = false;
  }
}

function openNameLength(text: string): number {
  const m = OPEN_NAME.exec(text);
  return m ? m[0].length : 0;
}
