import type { AuditBodies } from '../audit/event.js';
import { redactText } from '../guard/index.js';

/**
 * What the audit trail keeps of a request's bodies when the operator opted in. Every string in
 * a body is passed through the content guard's redaction before it is kept, whatever action the
 * request's policy took on what was found (flagged content reaches the upstream as it was, but
 * never the trail), and each body is cut at `maxBytes` of JSON text.
 */
export class BodyRecorder {
  readonly #maxChars: number;
  #request: string | null = null;
  #events: string[] = [];
  #eventChars = 0;
  #truncated = false;

  constructor(maxBytes: number) {
    // JSON text here is mostly ASCII; cutting by characters keeps the bound without encoding.
    this.#maxChars = maxBytes;
  }

  /** Keeps the request body (a parsed JSON value). */
  request(body: unknown): void {
    this.#request = this.#cut(JSON.stringify(redactStrings(body)));
  }

  /** The answer of a non-streamed request. */
  response(body: unknown): AuditBodies {
    return this.#result(this.#cut(JSON.stringify(redactStrings(body))));
  }

  /** One event of a streamed answer, as it was sent to the client. */
  event(data: string): void {
    if (this.#eventChars >= this.#maxChars) {
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
        return redactStrings(JSON.parse(data));
      } catch {
        return redactText(data).text;
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

  #cut(text: string | undefined): string | null {
    if (text === undefined) return null;
    if (text.length <= this.#maxChars) return text;
    this.#truncated = true;
    return text.slice(0, this.#maxChars);
  }
}

/** A copy of a JSON value with every string (keys aside) redacted. */
function redactStrings(value: unknown): unknown {
  if (typeof value === 'string') return redactText(value).text;
  if (Array.isArray(value)) return value.map(redactStrings);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) out[key] = redactStrings(inner);
    return out;
  }
  return value;
}
