import type { AuditBodies } from '../audit/event.js';
import { redactText, type Scanner } from '../guard/index.js';
import { replaceOwnKeys } from './caller-text.js';

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
  readonly #known: readonly string[];

  /**
   * `known` are secrets the gateway holds itself (the upstream key): replaced wherever they
   * appear, since such a key has no shape a detector could tell from any other token.
   */
  constructor(maxBytes: number, scanner: Scanner, known: readonly string[] = []) {
    this.#maxBytes = maxBytes;
    this.#scanner = scanner;
    this.#known = known;
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

  /**
   * The bodies of a streamed request. The answer is kept assembled (see `assembleStream`) and
   * redacted afterwards: redacting event by event would miss a value the model spread over
   * several events, which is how a stream usually carries it.
   */
  streamed(): AuditBodies {
    const answer = this.#redactStrings(assembleStream(this.#events));
    return this.#result(this.#cut(JSON.stringify(answer)));
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
    const out = replaceOwnKeys(text, this.#known, true);
    return redactText(this.#scanner.redact(out).text).text;
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

/** One choice of a streamed answer, its deltas joined. */
interface AssembledChoice {
  index: number;
  role: string | null;
  content: string;
  reasoning: string;
  /** Tool calls by their index, as the deltas number them. */
  calls: Map<number, { id: string | null; name: string; arguments: string }>;
  finish_reason: string | null;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A streamed completion as one object: per choice, the text of its deltas joined (content,
 * thinking, and each tool call's arguments), with the last id, model and usage seen. Events or
 * parts of a shape not known here are kept whole under `other`.
 */
export function assembleStream(events: readonly string[]): Json {
  const choices = new Map<number, AssembledChoice>();
  const other: unknown[] = [];
  let id: unknown = null;
  let model: unknown = null;
  let usage: unknown = null;
  for (const data of events) {
    let event: unknown;
    try {
      event = JSON.parse(data);
    } catch {
      other.push(data);
      continue;
    }
    if (!isObject(event) || !Array.isArray(event.choices)) {
      other.push(event);
      continue;
    }
    id = event.id ?? id;
    model = event.model ?? model;
    usage = event.usage ?? usage;
    for (const choice of event.choices) {
      if (!isObject(choice)) continue;
      const index = typeof choice.index === 'number' ? choice.index : 0;
      let into = choices.get(index);
      if (!into) {
        into = {
          index,
          role: null,
          content: '',
          reasoning: '',
          calls: new Map(),
          finish_reason: null,
        };
        choices.set(index, into);
      }
      if (typeof choice.finish_reason === 'string') into.finish_reason = choice.finish_reason;
      const delta = isObject(choice.delta)
        ? choice.delta
        : isObject(choice.message)
          ? choice.message
          : null;
      if (delta) addDelta(into, delta, other);
    }
  }
  return {
    stream: true,
    id,
    model,
    choices: [...choices.values()]
      .sort((a, b) => a.index - b.index)
      .map(({ calls, ...choice }) => ({
        ...choice,
        tool_calls: [...calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call),
      })),
    usage,
    ...(other.length > 0 ? { other } : {}),
  };
}

function addDelta(into: AssembledChoice, delta: Json, other: unknown[]): void {
  for (const [key, value] of Object.entries(delta)) {
    if (key === 'role' && typeof value === 'string') into.role = value;
    else if (key === 'content') addContent(into, value, other);
    else if (key === 'tool_calls' && Array.isArray(value)) addToolCalls(into, value);
    else if (value !== null && value !== undefined) other.push({ [key]: value });
  }
}

function addContent(into: AssembledChoice, content: unknown, other: unknown[]): void {
  if (typeof content === 'string') {
    into.content += content;
    return;
  }
  if (!Array.isArray(content)) {
    if (content !== null && content !== undefined) other.push({ content });
    return;
  }
  for (const chunk of content) {
    if (isObject(chunk) && chunk.type === 'text' && typeof chunk.text === 'string') {
      into.content += chunk.text;
    } else if (isObject(chunk) && chunk.type === 'thinking' && Array.isArray(chunk.thinking)) {
      for (const part of chunk.thinking) {
        if (isObject(part) && typeof part.text === 'string') into.reasoning += part.text;
        else other.push(part);
      }
    } else {
      other.push(chunk);
    }
  }
}

function addToolCalls(into: AssembledChoice, calls: unknown[]): void {
  calls.forEach((call, position) => {
    if (!isObject(call)) return;
    const at = typeof call.index === 'number' ? call.index : position;
    let slot = into.calls.get(at);
    if (!slot) {
      slot = { id: null, name: '', arguments: '' };
      into.calls.set(at, slot);
    }
    if (typeof call.id === 'string') slot.id = call.id;
    const fn = isObject(call.function) ? call.function : {};
    if (typeof fn.name === 'string') slot.name += fn.name;
    if (typeof fn.arguments === 'string') slot.arguments += fn.arguments;
    else if (fn.arguments !== undefined) slot.arguments += JSON.stringify(fn.arguments);
  });
}
