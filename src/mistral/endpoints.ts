/**
 * The inspected endpoints as data, and helpers that read and edit a request body that already
 * passed its schema. The helpers stay defensive anyway (a relaxed profile lets unknown fields
 * through, and a wrong shape must never crash the gateway), so they check types as they go.
 */
import type { SchemaName } from './schemas.js';

/** The action name of an inspected endpoint, as policies and audit events spell it. */
export type EndpointAction =
  | 'chat.complete'
  | 'fim.complete'
  | 'agents.complete'
  | 'embeddings.create'
  | 'moderations.create'
  | 'chat.moderations.create'
  | 'classifications.create'
  | 'chat.classifications.create'
  | 'ocr.process';

/** One inspected endpoint: its path, action, request schema and what its body may carry. */
export interface EndpointSpec {
  path: string;
  action: EndpointAction;
  schemaName: SchemaName;
  /** The body may ask for an SSE answer with `"stream": true`. */
  streamable: boolean;
  /** The body takes `max_tokens`, so a policy cap applies to it. */
  hasMaxTokens: boolean;
}

/**
 * Every inspected endpoint, all `POST`. Agents completions are streamable although the spec lists
 * no SSE answer for them: the body has the flag and the official SDK streams them.
 */
export const ENDPOINTS: readonly EndpointSpec[] = Object.freeze([
  spec('/v1/chat/completions', 'chat.complete', 'ChatCompletionRequest', true),
  spec('/v1/fim/completions', 'fim.complete', 'FIMCompletionRequest', true),
  spec('/v1/agents/completions', 'agents.complete', 'AgentsCompletionRequest', true),
  spec('/v1/embeddings', 'embeddings.create', 'EmbeddingRequest', false),
  spec('/v1/moderations', 'moderations.create', 'ClassificationRequest', false),
  spec('/v1/chat/moderations', 'chat.moderations.create', 'ChatModerationRequest', false),
  spec('/v1/classifications', 'classifications.create', 'ClassificationRequest', false),
  spec(
    '/v1/chat/classifications',
    'chat.classifications.create',
    'ChatClassificationRequest',
    false,
  ),
  spec('/v1/ocr', 'ocr.process', 'OCRRequest', false),
]);

function spec(
  path: string,
  action: EndpointAction,
  schemaName: SchemaName,
  completion: boolean,
): EndpointSpec {
  return Object.freeze({
    path,
    action,
    schemaName,
    streamable: completion,
    hasMaxTokens: completion,
  });
}

/** A parsed JSON request body. */
export type Body = Record<string, unknown>;

/** One user-supplied text of a request, readable and replaceable in place. */
export interface TextField {
  /** Where the text sits, written like `messages[2].content`. */
  path: string;
  get(): string;
  set(value: string): void;
}

/** The model a request names; undefined for agents completions, which name an agent instead. */
export function modelOf(body: Body): string | undefined {
  return typeof body.model === 'string' ? body.model : undefined;
}

/** The requested `max_tokens`: a number, null when sent as null, undefined when absent. */
export function maxTokensOf(body: Body): number | null | undefined {
  const value = body.max_tokens;
  if (value === null) return null;
  return typeof value === 'number' ? value : undefined;
}

/** Sets `max_tokens` in place. */
export function setMaxTokens(body: Body, n: number): void {
  body.max_tokens = n;
}

/** True when the body asks for a streamed (SSE) answer. */
export function isStream(body: Body): boolean {
  return body.stream === true;
}

/**
 * The number of messages a request carries, across every conversation of a batched chat
 * moderation or classification; 0 for endpoints without messages.
 */
export function countMessages(body: Body): number {
  return conversationsOf(body).reduce((sum, c) => sum + c.messages.length, 0);
}

/**
 * Every user-supplied text of a request: message contents (strings, text chunks and thinking
 * text), tool call arguments, the FIM prompt and suffix, predicted output, text inputs of
 * embeddings and classifiers, and the OCR annotation prompt. Images, audio, documents sent by
 * URL or file id and free-form objects such as tool schemas are not texts.
 */
export function textFields(endpoint: EndpointSpec, body: Body): TextField[] {
  const out: TextField[] = [];
  for (const { path, messages } of conversationsOf(body)) {
    messages.forEach((message, i) => {
      messageTexts(message, `${path}[${i}]`, out);
    });
  }
  inputTexts(endpoint, body, out);
  instructionTexts(body, out);
  return out;
}

/**
 * Texts outside the messages that the model still reads: tool names, descriptions and parameter
 * schemas, the structured-output schema, and stop sequences. A credential pasted into a tool
 * description reaches the model as surely as one in a message.
 */
function instructionTexts(body: Body, out: TextField[]): void {
  if (Array.isArray(body.tools)) {
    body.tools.forEach((tool, i) => {
      if (!isObject(tool) || !isObject(tool.function)) return;
      const at = `tools[${i}].function`;
      pushString(tool.function, 'name', `${at}.name`, out);
      pushString(tool.function, 'description', `${at}.description`, out);
      pushJson(tool.function, 'parameters', `${at}.parameters`, out);
    });
  }
  const format = body.response_format;
  if (isObject(format) && isObject(format.json_schema)) {
    const schema = format.json_schema;
    pushString(schema, 'name', 'response_format.json_schema.name', out);
    pushString(schema, 'description', 'response_format.json_schema.description', out);
    pushJson(schema, 'schema', 'response_format.json_schema.schema', out);
  }
  if (typeof body.stop === 'string') pushString(body, 'stop', 'stop', out);
  else if (Array.isArray(body.stop)) stringItems(body.stop, 'stop', out);
}

/**
 * A free-form JSON value (a schema, parameters) read as its JSON text. A replacement that is
 * still JSON of the same kind is stored parsed again; anything else is stored as the text.
 */
function pushJson(owner: Record<string, unknown>, key: string, path: string, out: TextField[]) {
  const value = owner[key];
  if (typeof value === 'string') {
    pushString(owner, key, path, out);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  out.push({
    path,
    get: () => JSON.stringify(owner[key]),
    set: (text) => {
      owner[key] = parseObject(text) ?? text;
    },
  });
}

/**
 * Texts of a message that are scanned but are not what it says: tool names, image and document
 * addresses and names. They do not count towards a message's size.
 */
const NOT_MESSAGE_TEXT = /\.(?:function\.name|image_url(?:\.url)?|document_url|document_name)$/;

/** The text size of one message or top-level input of a request. */
export interface MessageSize {
  /** The message or input, written like `messages[2]`, `input[0].messages[1]`, `prompt`. */
  path: string;
  /** Characters (UTF-16 code units, as `String.length` counts them) of all its texts. */
  chars: number;
}

/**
 * The size of each message and each top-level text input of a request, counted over the texts
 * `textFields` reads in them (less names and addresses). A message sums every content chunk (thinking included) and its tool call
 * arguments; the FIM prompt and suffix, predicted output, each item of an `input` list and the
 * OCR annotation prompt count as one input each. A per-message limit applies to these sums, so a
 * long text split into many chunks counts as what it is.
 *
 * @example
 * const content = [{ type: 'text', text: 'ab' }, { type: 'text', text: 'c' }];
 * messageSizes(chat, { messages: [{ role: 'user', content }] });
 * // [{ path: 'messages[0]', chars: 3 }]
 */
export function messageSizes(endpoint: EndpointSpec, body: Body): MessageSize[] {
  const out: MessageSize[] = [];
  for (const { path, messages } of conversationsOf(body)) {
    messages.forEach((message, i) => {
      const texts: TextField[] = [];
      messageTexts(message, `${path}[${i}]`, texts);
      const written = texts.filter((t) => !NOT_MESSAGE_TEXT.test(t.path));
      out.push({ path: `${path}[${i}]`, chars: totalChars(written) });
    });
  }
  const inputs: TextField[] = [];
  inputTexts(endpoint, body, inputs);
  for (const field of inputs) out.push({ path: field.path, chars: field.get().length });
  return out;
}

/** The texts of a request outside its messages: prompts, predictions and plain inputs. */
function inputTexts(endpoint: EndpointSpec, body: Body, out: TextField[]): void {
  switch (endpoint.schemaName) {
    case 'FIMCompletionRequest':
      pushString(body, 'prompt', 'prompt', out);
      pushString(body, 'suffix', 'suffix', out);
      break;
    case 'ChatCompletionRequest':
    case 'AgentsCompletionRequest':
      if (isObject(body.prediction)) {
        pushString(body.prediction, 'content', 'prediction.content', out);
      }
      break;
    case 'EmbeddingRequest':
    case 'ClassificationRequest':
      if (Array.isArray(body.input)) stringItems(body.input, 'input', out);
      else pushString(body, 'input', 'input', out);
      break;
    case 'OCRRequest':
      pushString(body, 'document_annotation_prompt', 'document_annotation_prompt', out);
      break;
    default:
      break;
  }
}

function totalChars(fields: TextField[]): number {
  let total = 0;
  for (const field of fields) total += field.get().length;
  return total;
}

/** The total length of every text field, the base of a prompt token estimate. */
export function estimatePromptChars(endpoint: EndpointSpec, body: Body): number {
  return totalChars(textFields(endpoint, body));
}

interface Conversation {
  path: string;
  messages: unknown[];
}

/** The message lists of a body, wherever its endpoint keeps them. */
function conversationsOf(body: Body): Conversation[] {
  if (Array.isArray(body.messages)) return [{ path: 'messages', messages: body.messages }];
  const input = body.input;
  if (isObject(input) && Array.isArray(input.messages)) {
    return [{ path: 'input.messages', messages: input.messages }];
  }
  if (!Array.isArray(input) || input.length === 0) return [];
  // Chat moderations take one conversation or a list of them; chat classifications take one
  // `{messages}` or a list of them. Plain classifiers take strings, which match none of these.
  if (input.every(Array.isArray)) {
    return input.map((messages, i) => ({ path: `input[${i}]`, messages: messages as unknown[] }));
  }
  if (input.every((item) => isObject(item) && Array.isArray(item.messages))) {
    return input.map((item, i) => ({
      path: `input[${i}].messages`,
      messages: (item as { messages: unknown[] }).messages,
    }));
  }
  if (input.every((item) => isObject(item) && 'role' in item))
    return [{ path: 'input', messages: input }];
  return [];
}

function messageTexts(message: unknown, path: string, out: TextField[]): void {
  if (!isObject(message)) return;
  if (Array.isArray(message.content)) chunkTexts(message.content, `${path}.content`, out);
  else pushString(message, 'content', `${path}.content`, out);
  if (!Array.isArray(message.tool_calls)) return;
  message.tool_calls.forEach((call, i) => {
    if (isObject(call) && isObject(call.function)) {
      pushString(call.function, 'name', `${path}.tool_calls[${i}].function.name`, out);
      pushArguments(call.function, `${path}.tool_calls[${i}].function.arguments`, out);
    }
  });
}

function chunkTexts(chunks: unknown[], path: string, out: TextField[]): void {
  chunks.forEach((chunk, i) => {
    if (!isObject(chunk)) return;
    const at = `${path}[${i}]`;
    if (chunk.type === 'thinking' && Array.isArray(chunk.thinking)) {
      chunkTexts(chunk.thinking, `${at}.thinking`, out);
    } else if (chunk.type === 'text' || chunk.type === undefined) {
      pushString(chunk, 'text', `${at}.text`, out);
    } else if (chunk.type === 'image_url') {
      // An image's URL may carry a token in its query; inline `data:` images are not text.
      if (isObject(chunk.image_url)) pushUrl(chunk.image_url, 'url', `${at}.image_url.url`, out);
      else pushUrl(chunk, 'image_url', `${at}.image_url`, out);
    } else if (chunk.type === 'document_url') {
      pushUrl(chunk, 'document_url', `${at}.document_url`, out);
      pushString(chunk, 'document_name', `${at}.document_name`, out);
    }
  });
}

function pushUrl(owner: Record<string, unknown>, key: string, path: string, out: TextField[]) {
  const value = owner[key];
  if (typeof value === 'string' && !value.startsWith('data:')) pushString(owner, key, path, out);
}

/**
 * Tool call arguments are a JSON string or an object. An object is read as its JSON text; a
 * replacement that is still a JSON object is stored as an object again, anything else (a text a
 * redactor made invalid JSON) as a string, which the API also accepts.
 */
function pushArguments(fn: Record<string, unknown>, path: string, out: TextField[]): void {
  if (typeof fn.arguments === 'string') {
    pushString(fn, 'arguments', path, out);
    return;
  }
  if (!isObject(fn.arguments)) return;
  out.push({
    path,
    get: () => (typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments)),
    set: (value) => {
      fn.arguments = parseObject(value) ?? value;
    },
  });
}

function pushString(owner: Record<string, unknown>, key: string, path: string, out: TextField[]) {
  if (typeof owner[key] !== 'string') return;
  out.push({
    path,
    get: () => owner[key] as string,
    set: (value) => {
      owner[key] = value;
    },
  });
}

function stringItems(items: unknown[], path: string, out: TextField[]): void {
  items.forEach((item, i) => {
    if (typeof item !== 'string') return;
    out.push({
      path: `${path}[${i}]`,
      get: () => items[i] as string,
      set: (value) => {
        items[i] = value;
      },
    });
  });
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** True for a JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
