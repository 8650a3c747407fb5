/**
 * Server-sent events as the upstream sends them: an incremental parser that takes text in chunks
 * cut anywhere, a writer, and a lenient reader of token usage. The parser follows the WHATWG
 * event-stream rules (three kinds of line end, `data` lines joined by `\n`, comments skipped) and
 * runs in time linear in its input. It holds at most one pending event, whose size is capped, so
 * an upstream that never ends an event cannot make the gateway buffer without bound.
 */

/**
 * One dispatched event. `event` is absent for data-only events, as Mistral's chat streams are.
 * `id` is set only on the event that carried it: the parser relays, it does not reconnect.
 */
export interface SseEvent {
  event?: string;
  data: string;
  id?: string;
  retry?: number;
}

/** The data of the event that ends chat, FIM and agents completion streams. */
export const SSE_DONE = '[DONE]';

/** The default cap on one pending event, in characters. */
export const DEFAULT_MAX_EVENT_CHARS = 1024 * 1024;

/** Thrown when one event grows beyond the parser's cap before it ends. */
export class SseEventTooLargeError extends Error {
  readonly code = 'sse_event_too_large';
  readonly limit: number;

  constructor(limit: number) {
    super(`An SSE event exceeded ${limit} characters before it ended.`);
    this.name = 'SseEventTooLargeError';
    this.limit = limit;
  }
}

/** Options of `createSseParser`. */
export interface SseParserOptions {
  /** Most characters one event may hold before it ends (field names included). */
  maxEventChars?: number;
}

/** An incremental SSE parser: feed it text, get back the events completed so far. */
export interface SseParser {
  /** Parses the next piece of the stream; returns the events it completed. */
  push(chunk: string): SseEvent[];
  /** Ends the stream; returns the last event if it had data but no closing blank line. */
  end(): SseEvent[];
}

/** True when `event` is the `[DONE]` terminator. */
export function isDoneEvent(event: SseEvent): boolean {
  return event.data === SSE_DONE;
}

const LF = '\n';
const DIGITS = /^\d+$/;
const CR = '\r';

/**
 * Creates a parser. Text must already be decoded (use a streaming `TextDecoder` so a character
 * cut between two network chunks is decoded whole).
 *
 * @example
 * const parser = createSseParser();
 * const decoder = new TextDecoder();
 * for await (const chunk of body) {
 *   for (const event of parser.push(decoder.decode(chunk, { stream: true }))) relay(event);
 * }
 */
export function createSseParser(options: SseParserOptions = {}): SseParser {
  const max = options.maxEventChars ?? DEFAULT_MAX_EVENT_CHARS;
  let partial = '';
  let skipLf = false;
  let data: string[] = [];
  let hasData = false;
  let size = 0;
  let event: string | undefined;
  let id: string | undefined;
  let retry: number | undefined;
  let out: SseEvent[] = [];

  // `size` counts what the pending event holds (data, name, id); the line being read is checked
  // on top of it. Comments are dropped as read, so a long run of keep-alives counts for nothing.
  const check = (extra: number): void => {
    if (size + extra > max) throw new SseEventTooLargeError(max);
  };

  const dispatch = (): void => {
    if (hasData) {
      const next: SseEvent = { data: data.join(LF) };
      if (event !== undefined) next.event = event;
      if (id !== undefined) next.id = id;
      if (retry !== undefined) next.retry = retry;
      out.push(next);
    }
    data = [];
    hasData = false;
    event = undefined;
    id = undefined;
    retry = undefined;
    size = 0;
  };

  const line = (text: string): void => {
    if (text === '') {
      dispatch();
      return;
    }
    if (text.charCodeAt(0) === 0x3a) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    if (field === 'data') {
      data.push(value);
      hasData = true;
      size += value.length + 1;
    } else if (field === 'event') {
      event = value;
      size += value.length;
    } else if (field === 'id') {
      if (!value.includes('\u0000')) id = value;
      size += value.length;
    } else if (field === 'retry') {
      if (DIGITS.test(value)) retry = Number(value);
    }
    check(0);
  };

  const push = (chunk: string): SseEvent[] => {
    out = [];
    let start = 0;
    if (skipLf && chunk.startsWith(LF)) start = 1;
    skipLf = false;
    // Next line ends, found with indexOf and reused until passed, so each character is scanned
    // a bounded number of times whatever the mix of line ends.
    let nextLf = chunk.indexOf(LF, start);
    let nextCr = chunk.indexOf(CR, start);
    while (nextLf !== -1 || nextCr !== -1) {
      const end = nextCr === -1 || (nextLf !== -1 && nextLf < nextCr) ? nextLf : nextCr;
      check(partial.length + end - start);
      line(partial + chunk.slice(start, end));
      partial = '';
      start = end + 1;
      if (end === nextCr) {
        if (start === chunk.length) skipLf = true;
        else if (chunk.charCodeAt(start) === 0x0a) start += 1;
      }
      if (nextLf !== -1 && nextLf < start) nextLf = chunk.indexOf(LF, start);
      if (nextCr !== -1 && nextCr < start) nextCr = chunk.indexOf(CR, start);
    }
    check(partial.length + chunk.length - start);
    partial += chunk.slice(start);
    return out;
  };

  const end = (): SseEvent[] => {
    out = [];
    if (partial !== '') line(partial);
    partial = '';
    skipLf = false;
    dispatch();
    return out;
  };

  return { push, end };
}

const NEWLINES = /\r\n|\r|\n/;
const LINE_BREAKS = /[\r\n]/g;

/**
 * Writes one event as SSE text, ending with the blank line that dispatches it. Data holding
 * line breaks becomes several `data:` lines; line breaks in the event name or id are dropped,
 * since they would let the value inject fields.
 */
export function formatSseEvent(event: Pick<SseEvent, 'event' | 'data' | 'id'>): string {
  let text = '';
  if (event.event !== undefined) text += `event: ${event.event.replace(LINE_BREAKS, '')}\n`;
  if (event.id !== undefined) text += `id: ${event.id.replace(LINE_BREAKS, '')}\n`;
  for (const part of event.data.split(NEWLINES)) text += `data: ${part}\n`;
  return `${text}\n`;
}

/** Token counts read from an answer's `usage`; null where a count is absent or not a number. */
export interface TokenUsage {
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
}

/**
 * Reads `usage` from a chat chunk or a whole answer, given as parsed JSON or as its text.
 * Lenient: extra fields are ignored, and a missing total is the sum of the other two. Returns
 * null when there is no usable `usage` (most stream chunks carry `"usage": null`).
 */
export function parseChunkUsage(json: unknown): TokenUsage | null {
  let value = json;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return null;
    }
  }
  if (typeof value !== 'object' || value === null) return null;
  const usage = (value as { usage?: unknown }).usage;
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as Record<string, unknown>;
  const promptTokens = count(u.prompt_tokens);
  const completionTokens = count(u.completion_tokens);
  let totalTokens = count(u.total_tokens);
  if (totalTokens === null && promptTokens !== null) {
    totalTokens = promptTokens + (completionTokens ?? 0);
  }
  if (promptTokens === null && completionTokens === null && totalTokens === null) return null;
  return { promptTokens, completionTokens, totalTokens };
}

function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}
