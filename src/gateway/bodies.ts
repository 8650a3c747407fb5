import type { AuditBodies } from '../audit/event.js';
import { redactText, type Scanner } from '../guard/index.js';

/**
 * What the audit trail keeps of a request's bodies when the operator opted in. Every string in
 * a body is redacted before it is kept, by the profile's scanner (its custom patterns and words
 * included) and then by the default detectors (in case the profile turned some off), whatever
 * action the request's policy took on what was found: flagged content reaches the upstream as
 * it was, but never the trail. Each body is cut at `maxBytes` of JSON text.
 */
export class BodyRecorder {
  readonly #maxBytes: number;
  #request: string | null = null;
  #events: string[] = [];
  #eventChars = 0;
  #truncated = false;

  readonly #scanner: Scanner;

  constructor(maxBytes: number, scanner: Scanner) {
    this.#maxBytes = maxBytes;
    this.#scanner = scanner;
  }

  /** Keeps the request body (a parsed JSON value). */
  request(body: unknown): void {
    this.#request = this.#cut(JSON.stringify(this.#redactStrings(body)));
  }

  /** The answer of a non-streamed request. */
  response(body: unknown): AuditBodies {
    return this.#result(this.#cut(JSON.stringify(this.#redactStrings(body))));
  }

  /** One event of a streamed answer, as it was sent to the client. */
  event(data: string): void {
    // Characters never outnumber UTF-8 bytes, so this gathers at least what the cut keeps.
    if (this.#eventChars >= this.#maxBytes) {
      this.#truncated = true;
      return;
    }
    this.#events.push(data);
    this.#eventChars += data.length + 1;
  }

  /** The bodies of a streamed request: its events as a JSON array, each one redacted. */
  streamed(): AuditBodies {
    const events = this.#events.map((data) => {
      try {
        return this.#redactStrings(JSON.parse(data));
      } catch {
        return this.#redact(data);
      }
    });
    return this.#result(this.#cut(JSON.stringify(events)));
  }

  /** What was kept so far, for a request that ended without an answer to keep. */
  partial(): AuditBodies | null {
    return this.#request === null ? null : this.#result(null);
  }

  #result(response: string | null): AuditBodies {
    return { request: this.#request, response, truncated: this.#truncated };
  }

  /** The text cut to `maxBytes` of UTF-8, never in the middle of a character. */
  #cut(text: string | undefined): string | null {
    if (text === undefined) return null;
    if (text.length <= this.#maxBytes / 3 || Buffer.byteLength(text) <= this.#maxBytes) return text;
    this.#truncated = true;
    const cut = Buffer.from(text).subarray(0, this.#maxBytes).toString('utf8');
    return cut.endsWith('\uFFFD') ? cut.replace(/\uFFFD+$/, '') : cut;
  }

  #redact(text: string): string {
    return redactText(this.#scanner.redact(text).text).text;
  }

  /** A copy of a JSON value with every string, member names included, redacted. */
  #redactStrings(value: unknown): unknown {
    if (typeof value === 'string') return this.#redact(value);
    if (Array.isArray(value)) return value.map((item) => this.#redactStrings(item));
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, inner] of Object.entries(value)) {
        out[this.#redact(key)] = this.#redactStrings(inner);
      }
      return out;
    }
    return value;
  }
}
