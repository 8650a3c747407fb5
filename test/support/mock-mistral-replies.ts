// Answer bodies in the live API's wire format. Fixed bodies are serialised once at load; bodies
// that carry a request's ID, model or usage are assembled from prebuilt pieces.
import type { Directives } from './mock-mistral-directives.js';
import { parseDirectives } from './mock-mistral-directives.js';
import {
  contentText,
  estimateTokens,
  inputList,
  type JsonObject,
  messagesChars,
} from './mock-mistral-text.js';

/** What the server answers when the prompt carries no `[[echo]]` or `[[reply:...]]`. */
export const DEFAULT_REPLY = 'Hello from the loopback Mistral server.';

/** The model reported by agents completions, whose requests name an agent, not a model. */
export const AGENT_MODEL = 'mistral-medium-latest';

/** A complete answer before delivery: a JSON body, or the SSE events of a stream. */
export type Reply =
  | { kind: 'json'; status: number; body: string; tokens: number }
  | { kind: 'sse'; events: string[]; tokens: number };

/** The 401 body the live API sends now (2025-26); the older `{message, request_id}` is not used. */
export const UNAUTHORIZED_BODY = '{"detail":"Unauthorized"}';
/** The live 429 body (2026). */
export const RATE_LIMITED_BODY = errorBody('Rate limit exceeded', 'rate_limited', '1300');
/** FastAPI's answer to a known path with the wrong method. */
export const METHOD_NOT_ALLOWED_BODY = '{"detail":"Method Not Allowed"}';
/** A chat completion cut off mid-string: valid UTF-8, invalid JSON. */
export const MALFORMED_BODY =
  '{"id":"malformed","object":"chat.completion","choices":[{"index":0,"message":{"content":"Hel';
/** `GET /v1/files*` answers an empty list so pass-through routes have a real upstream reply. */
export const FILES_BODY = '{"object":"list","data":[],"total":0}';

/** A body in the docs' error shape, `{object:"error", message, type, param, code}`. */
export function errorBody(message: unknown, type: string, code: string | null = null): string {
  return JSON.stringify({ object: 'error', message, type, param: null, code });
}

const SERVER_ERRORS = new Map<number, string>([
  [500, errorBody('Internal server error', 'server_error')],
  [502, errorBody('Bad gateway', 'server_error')],
  [503, errorBody('Service unavailable', 'server_error')],
  [504, errorBody('Gateway timeout', 'server_error')],
]);

/** The body of a 5xx fault; statuses outside the table get the 500 message. */
export function serverErrorBody(status: number): string {
  return SERVER_ERRORS.get(status) ?? SERVER_ERRORS.get(500)!;
}

/** A 422 in the live shape: the pydantic `detail` list sits inside `message`. */
export function validationReply(detail: JsonObject): Reply {
  const body = errorBody({ detail: [detail] }, 'invalid_request_error');
  return { kind: 'json', status: 422, body, tokens: 0 };
}

/** A 404 in the docs' error shape. */
export function notFoundReply(message: string): Reply {
  return {
    kind: 'json',
    status: 404,
    body: errorBody(message, 'invalid_request_error'),
    tokens: 0,
  };
}

/** A 200 JSON reply with no token cost. */
export function okReply(body: string, tokens = 0): Reply {
  return { kind: 'json', status: 200, body, tokens };
}

function usageJson(prompt: number, completion: number): string {
  const total = prompt + completion;
  return `{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${total}}`;
}

// Pieces of a few words each, so a default stream has several content events.
function wordPieces(text: string, wordsPerPiece = 3): string[] {
  const pieces: string[] = [];
  let start = 0;
  let words = 0;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) !== 32 || ++words < wordsPerPiece) continue;
    pieces.push(text.slice(start, i + 1));
    start = i + 1;
    words = 0;
  }
  if (start < text.length || pieces.length === 0) pieces.push(text.slice(start));
  return pieces;
}

function fixedPieces(text: string, size: number): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size));
  return pieces.length ? pieces : [''];
}

/** Which completion endpoint a request came in on; it decides where the prompt is read. */
export type CompletionKind = 'chat' | 'fim' | 'agents';

/**
 * Answers chat, FIM and agents completions. The reply text comes from the directives, is cut to
 * `max_tokens * 4` characters (finish_reason `length`), and streams as data-only SSE events:
 * a role event, content events, the last carrying finish_reason and usage, then `[DONE]`.
 */
export function completionReply(
  kind: CompletionKind,
  body: JsonObject,
  d: Directives,
  id: string,
): Reply {
  const model = typeof body.model === 'string' ? body.model : AGENT_MODEL;
  const promptChars =
    kind === 'fim'
      ? contentText(body.prompt).length + contentText(body.suffix).length
      : messagesChars(body.messages);
  let content = d.reply ?? (d.echo ? d.text : DEFAULT_REPLY);
  let finish = 'stop';
  const max = body.max_tokens;
  if (typeof max === 'number' && Number.isInteger(max) && max >= 0 && content.length > max * 4) {
    content = content.slice(0, max * 4);
    finish = 'length';
  }
  const promptTokens = estimateTokens(promptChars);
  const completionTokens = estimateTokens(content);
  const usage = usageJson(promptTokens, completionTokens);
  const created = Math.floor(Date.now() / 1000);
  const tokens = promptTokens + completionTokens;
  const head = `{"id":"${id}","object":"chat.completion`;
  const tail = `,"created":${created},"model":${JSON.stringify(model)}`;
  if (body.stream !== true) {
    const message = `{"role":"assistant","content":${JSON.stringify(content)},"tool_calls":null}`;
    const choice = `{"index":0,"message":${message},"finish_reason":"${finish}"}`;
    return okReply(`${head}"${tail},"usage":${usage},"choices":[${choice}]}`, tokens);
  }
  const pieces = d.chunk ? fixedPieces(content, d.chunk) : wordPieces(content);
  const prefix = `data: ${head}.chunk"${tail},"choices":[{"index":0,"delta":`;
  const end = `"finish_reason":"${finish}"}],"usage":${usage}}\n\n`;
  return { kind: 'sse', events: streamEvents(prefix, pieces, end), tokens };
}

// Every event shares the prefix up to `delta`; only the last piece carries finish_reason and
// usage, as in the docs example.
function streamEvents(prefix: string, pieces: string[], end: string): string[] {
  const events = [`${prefix}{"role":"assistant","content":""},"finish_reason":null}]}\n\n`];
  const last = pieces.length - 1;
  for (let i = 0; i < last; i++) {
    events.push(`${prefix}{"content":${JSON.stringify(pieces[i])}},"finish_reason":null}]}\n\n`);
  }
  events.push(`${prefix}{"content":${JSON.stringify(pieces[last])}},${end}`, 'data: [DONE]\n\n');
  return events;
}

// FNV-1a seeded xorshift: the same text always embeds to the same vector, with no allocation
// beyond the result.
function vector(text: string, dims: number): number[] {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  const out = new Array<number>(dims);
  for (let i = 0; i < dims; i++) {
    h ^= h << 13;
    h ^= h >>> 17;
    h ^= h << 5;
    out[i] = Math.round(((h >>> 0) / 0x80000000 - 1) * 1e6) / 1e6;
  }
  return out;
}

// `output_dtype` as the spec lists it: floats, 8-bit integers, or sign bits packed 8 per byte.
function encodeVector(v: number[], dtype: unknown, base64: boolean): number[] | string {
  let values: number[] = v;
  let bytes: Uint8Array | undefined;
  if (dtype === 'int8') values = v.map((x) => Math.round(x * 127));
  else if (dtype === 'uint8') values = v.map((x) => Math.round((x + 1) * 127.5));
  else if (dtype === 'binary' || dtype === 'ubinary') {
    values = [];
    for (let i = 0; i < v.length; i += 8) {
      let byte = 0;
      for (let b = 0; b < 8; b++) byte = (byte << 1) | ((v[i + b] ?? -1) > 0 ? 1 : 0);
      values.push(dtype === 'binary' ? byte - 128 : byte);
    }
  }
  if (!base64) return values;
  if (dtype === 'int8' || dtype === 'binary') bytes = new Uint8Array(Int8Array.from(values).buffer);
  else if (dtype === 'uint8' || dtype === 'ubinary') bytes = Uint8Array.from(values);
  else bytes = new Uint8Array(Float32Array.from(values).buffer);
  return Buffer.from(bytes).toString('base64');
}

/**
 * Answers embeddings: one deterministic vector per input, 8 wide unless `output_dimension`,
 * honouring `output_dtype` and `encoding_format: "base64"` (little-endian float32 for floats),
 * which the OpenAI SDK asks for by default.
 */
export function embeddingsReply(body: JsonObject, id: string): Reply {
  const inputs = inputList(body.input);
  const dim = body.output_dimension;
  const dims = typeof dim === 'number' && Number.isInteger(dim) && dim > 0 && dim <= 4096 ? dim : 8;
  const base64 = body.encoding_format === 'base64';
  let chars = 0;
  const data = inputs.map((text, index) => {
    chars += text.length;
    const embedding = encodeVector(vector(text, dims), body.output_dtype, base64);
    return { object: 'embedding', embedding, index };
  });
  const tokens = estimateTokens(chars);
  const usage = usageJson(tokens, 0);
  const model = JSON.stringify(body.model);
  const json = JSON.stringify(data);
  return okReply(
    `{"id":"embd-${id}","object":"list","model":${model},"data":${json},"usage":${usage}}`,
    tokens,
  );
}

const CATEGORIES = [
  'sexual',
  'hate_and_discrimination',
  'violence_and_threats',
  'dangerous_and_criminal_content',
  'selfharm',
  'health',
  'financial',
  'law',
  'pii',
];
const CLEAN_SCORE = 0.0012;
const FLAGGED_SCORE = 0.98;

function scores(flags: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of CATEGORIES) out[c] = flags.includes(c) ? FLAGGED_SCORE : CLEAN_SCORE;
  for (const f of flags) out[f] = FLAGGED_SCORE;
  return out;
}

function moderationResult(flags: string[]): string {
  const categoryScores = scores(flags);
  const categories: Record<string, boolean> = {};
  for (const [k, v] of Object.entries(categoryScores)) categories[k] = v >= 0.5;
  return JSON.stringify({ categories, category_scores: categoryScores });
}

const CLEAN_MODERATION = moderationResult([]);
const CLEAN_CLASSIFICATION = JSON.stringify({ moderation: { scores: scores([]) } });

// One text per result: each input of `/v1/moderations`, each conversation of the chat variants.
function targets(path: string, input: unknown): string[] {
  if (!path.startsWith('/v1/chat/')) return inputList(input);
  if (!Array.isArray(input) || input.length === 0) return [];
  const conversations = Array.isArray(input[0]) ? (input as unknown[]) : [input];
  return conversations.map((c) => {
    let text = '';
    if (Array.isArray(c)) for (const m of c) text += contentText((m as JsonObject)?.content);
    return text;
  });
}

/**
 * Answers the moderation and classification endpoints. Every category scores low unless the
 * input carries `[[flag:CATEGORY]]`, which scores that category high (and flags it).
 */
export function classifyReply(path: string, body: JsonObject, id: string): Reply {
  const moderation = path.endsWith('moderations');
  const texts = targets(path, body.input);
  let chars = 0;
  const results = texts.map((text) => {
    chars += text.length;
    const flags = text.includes('[[') ? parseDirectives(text).flags : [];
    if (moderation) return flags.length ? moderationResult(flags) : CLEAN_MODERATION;
    return flags.length
      ? JSON.stringify({ moderation: { scores: scores(flags) } })
      : CLEAN_CLASSIFICATION;
  });
  const tokens = estimateTokens(chars);
  const counts = `"completion_tokens":0,"total_tokens":${tokens},"request_count":${texts.length}`;
  const usage = `{"prompt_tokens":${tokens},${counts}}`;
  const model = JSON.stringify(body.model);
  return okReply(
    `{"id":"mod-${id}","model":${model},"results":[${results.join(',')}],"usage":${usage}}`,
    tokens,
  );
}

// `pages` is a list of indices or a string such as "0,2-4"; anything else means page 0 only.
function pageIndices(pages: unknown): number[] {
  if (Array.isArray(pages)) return pages.filter((p): p is number => Number.isInteger(p));
  if (typeof pages !== 'string') return [0];
  const out: number[] = [];
  for (const part of pages.split(',')) {
    const [from, to] = part.split('-').map(Number);
    if (!Number.isInteger(from)) continue;
    const last = Number.isInteger(to) ? Math.min(to!, from! + 999) : from!;
    for (let p = from!; p <= last; p++) out.push(p);
  }
  return out.length ? out : [0];
}

function documentSize(document: unknown): number | null {
  if (!document || typeof document !== 'object') return null;
  const d = document as JsonObject;
  const image = d.image_url;
  const url =
    d.document_url ?? (image && typeof image === 'object' ? (image as JsonObject).url : image);
  return typeof url === 'string' ? Buffer.byteLength(url) : null;
}

/** Answers OCR with one short markdown page per requested page. */
export function ocrReply(body: JsonObject): Reply {
  const pages = pageIndices(body.pages).map((index) => ({
    index,
    markdown: `# Page ${index + 1}\n\nLoopback OCR text.`,
    images: [],
    tables: [],
    hyperlinks: [],
    header: null,
    footer: null,
    dimensions: { dpi: 200, height: 2200, width: 1700 },
  }));
  const usageInfo = { pages_processed: pages.length, doc_size_bytes: documentSize(body.document) };
  const json = JSON.stringify({ pages, model: body.model, usage_info: usageInfo });
  return okReply(json);
}
