import type {
  ChatCompletionRequest,
  ChatModerationRequest,
  ClassificationRequest,
  EmbeddingRequest,
  FIMCompletionRequest,
} from '@mistralai/mistralai/models/components';
import type {
  ChatModerationRequestBody,
  ChatRequestBody,
  EmbeddingRequestBody,
  FimRequestBody,
  ModerationRequestBody,
} from './wire.js';

/** The request bodies `toSdkRequest` converts, by action, with the SDK type each becomes. */
export interface SdkRequests {
  'chat.complete': [ChatRequestBody, ChatCompletionRequest];
  'fim.complete': [FimRequestBody, FIMCompletionRequest];
  'embeddings.create': [EmbeddingRequestBody, EmbeddingRequest];
  'moderations.create': [ModerationRequestBody, ClassificationRequest];
  'chat.moderations.create': [ChatModerationRequestBody, ChatModerationRequest];
}

/** Objects whose keys are data, not field names: copied as they are. */
const FREE_FORM = new Set(['metadata', 'schema', 'parameters', 'arguments']);

/** Where the SDK renames a top-level field rather than only camel-casing it. */
const RENAMED: Partial<Record<keyof SdkRequests, Record<string, string>>> = {
  'embeddings.create': { input: 'inputs' },
  'moderations.create': { input: 'inputs' },
  'chat.moderations.create': { input: 'inputs' },
};

/** The same for fields of a nested object, by the key that holds it. */
const NESTED_RENAMED: Record<string, Record<string, string>> = {
  json_schema: { schema: 'schemaDefinition' },
};

/**
 * Turns a request body in the API's JSON shape (what `validateChatRequest` and the web
 * middleware return) into the SDK's request object, so it can be passed to the client:
 * `max_tokens` becomes `maxTokens`, `tool_calls` `toolCalls`, an embeddings `input` `inputs`, a
 * JSON schema's `schema` `schemaDefinition`.
 * The SDK turns it back into the same JSON when it sends it.
 *
 * @example
 * const request = toSdkRequest('chat.complete', validateChatRequest(req.body));
 * const answer = await mistral.chat.complete(request);
 */
export function toSdkRequest<A extends keyof SdkRequests>(
  action: A,
  body: SdkRequests[A][0],
): SdkRequests[A][1] {
  const renamed: Record<string, string> = RENAMED[action] ?? {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    out[renamed[key] ?? camel(key)] = convert(key, value);
  }
  return out as SdkRequests[A][1];
}

function convert(key: string, value: unknown): unknown {
  if (FREE_FORM.has(key)) return value;
  if (Array.isArray(value)) return value.map((item) => convert('', item));
  if (typeof value !== 'object' || value === null) return value;
  const renamed = NESTED_RENAMED[key] ?? {};
  const out: Record<string, unknown> = {};
  for (const [name, inner] of Object.entries(value)) {
    out[renamed[name] ?? camel(name)] = convert(name, inner);
  }
  return out;
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
