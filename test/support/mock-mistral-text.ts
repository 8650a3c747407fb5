// Text extraction and token estimates. Usage must be predictable by tests that only know what
// they sent, so every count is `ceil(characters / 4)` over the plain text the request carried.

/** A request body that parsed to a JSON object. */
export type JsonObject = Record<string, unknown>;

/** The deterministic token estimate used for every `usage` field: ceil(characters / 4). */
export function estimateTokens(text: string | number): number {
  return Math.ceil((typeof text === 'number' ? text : text.length) / 4);
}

/** The text of a message `content`: a string, or the `text` of its text chunks, joined. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const chunk of content) {
    if (chunk && typeof chunk === 'object' && typeof (chunk as JsonObject).text === 'string') {
      text += (chunk as JsonObject).text as string;
    }
  }
  return text;
}

/** Characters of text across all messages, which is what prompt_tokens is estimated from. */
export function messagesChars(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let chars = 0;
  for (const m of messages) {
    if (m && typeof m === 'object') chars += contentText((m as JsonObject).content).length;
  }
  return chars;
}

/** The last user message's text: the prompt that directives are read from. */
export function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as JsonObject | null;
    if (m && typeof m === 'object' && m.role === 'user') return contentText(m.content);
  }
  return '';
}

/** The `input` of embeddings and moderations as a list of strings. */
export function inputList(input: unknown): string[] {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) return [];
  return input.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
}

/**
 * The text a request's directives are read from, whatever the endpoint: the last user message
 * (chat, agents), the prompt (FIM) or the inputs (embeddings, moderations, classifications).
 */
export function promptOf(body: unknown): string {
  if (!body || typeof body !== 'object') return '';
  const b = body as JsonObject;
  if (Array.isArray(b.messages)) return lastUserText(b.messages);
  if (typeof b.prompt === 'string') return b.prompt;
  if (Array.isArray(b.input) && b.input.length > 0 && Array.isArray(b.input[0])) {
    return b.input.map((c) => lastUserText(c)).join('\n');
  }
  if (Array.isArray(b.input) && b.input.length > 0 && typeof b.input[0] === 'object') {
    return lastUserText(b.input);
  }
  return inputList(b.input).join('\n');
}
