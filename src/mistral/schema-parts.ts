/**
 * The building blocks the inference request schemas share: content chunks, messages, tools,
 * response formats and sampling fields, written from the components of Mistral's OpenAPI spec.
 * Everything is built by `buildParts` around one object factory, so the strict variant (unknown
 * fields refused, as the spec's `additionalProperties: false` demands) and the relaxed one differ
 * only in that factory.
 */
import { z } from 'zod';

/** Makes an object schema: strict (unknown keys refused) or loose (unknown keys kept). */
export type ObjectFactory = <S extends z.ZodRawShape>(
  shape: S,
) => z.ZodObject<S, z.core.$ZodObjectConfig>;

/**
 * Longest model, agent or object id accepted. Real ids are under 100 characters; the cap only
 * stops an id field from carrying megabytes into logs and audit events.
 */
export const MAX_ID_CHARS = 256;

/** Mistral's documented ceiling on tools per request. */
export const MAX_TOOLS = 128;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * A free-form JSON object (`metadata`, a JSON schema, tool arguments). A type check in place:
 * `z.record` would build a copy of the object that nobody reads, since the gateway forwards the
 * body it parsed, not zod's output.
 */
export const freeObject = z.custom<Record<string, unknown>>(isPlainObject, {
  message: 'Expected an object.',
});

/** An id-like string with a sane length. */
export const idString = z.string().min(1).max(MAX_ID_CHARS);

/** Optional and nullable, as the spec's `anyOf [T, null]` with no default. */
export const nullish = <T extends z.ZodType>(schema: T) => schema.nullable().optional();

/** Builds every shared part with one object factory. */
export function buildParts(obj: ObjectFactory) {
  const textChunk = obj({ type: z.literal('text'), text: z.string() });
  const imageUrlChunk = obj({
    type: z.literal('image_url'),
    image_url: z.union([
      z.string(),
      obj({ url: z.string(), detail: nullish(z.enum(['low', 'auto', 'high'])) }),
    ]),
  });
  const documentUrlChunk = obj({
    type: z.literal('document_url'),
    document_url: z.string(),
    document_name: nullish(z.string()),
  });
  // The spec says `format: uuid`, but the server's UUID type also takes the unhyphenated and
  // braced spellings, so only the length is checked here.
  const fileChunk = obj({ type: z.literal('file'), file_id: idString });
  const referenceChunk = obj({
    type: z.literal('reference'),
    reference_ids: z.array(z.union([z.number().int(), z.string()])),
  });
  const toolReferenceChunk = obj({
    type: z.literal('tool_reference'),
    tool: z.string(),
    title: z.string(),
    url: nullish(z.string()),
    favicon: nullish(z.string()),
    description: nullish(z.string()),
  });
  // Inside `thinking` the spec uses a plain anyOf with `type` defaulted, not a discriminator, so
  // a chunk without `type` is valid there.
  const thinkingItem = z.union([
    textChunk.extend({ type: z.literal('text').optional() }),
    toolReferenceChunk.extend({ type: z.literal('tool_reference').optional() }),
    referenceChunk.extend({ type: z.literal('reference').optional() }),
  ]);
  const thinkChunk = obj({
    type: z.literal('thinking'),
    thinking: z.array(thinkingItem),
    signature: nullish(z.string()),
    closed: z.boolean().optional(),
  });
  const audioChunk = obj({ type: z.literal('input_audio'), input_audio: z.string() });
  const contentChunk = z.discriminatedUnion('type', [
    textChunk,
    imageUrlChunk,
    documentUrlChunk,
    referenceChunk,
    fileChunk,
    thinkChunk,
    audioChunk,
  ]);
  const systemChunk = z.discriminatedUnion('type', [textChunk, thinkChunk]);
  const content = z.union([z.string(), z.array(contentChunk)]).nullable();

  const toolCall = obj({
    id: z.string().max(MAX_ID_CHARS).optional(),
    type: z.literal('function').optional(),
    function: obj({
      name: z.string().max(MAX_ID_CHARS),
      arguments: z.union([freeObject, z.string()]),
    }),
    index: z.number().int().optional(),
  });
  // `content` is required on system, user and tool messages (nullable on the last two) but
  // optional on assistant ones, which may carry only tool calls.
  const message = z.discriminatedUnion('role', [
    obj({ role: z.literal('system'), content: z.union([z.string(), z.array(systemChunk)]) }),
    obj({ role: z.literal('user'), content }),
    obj({
      role: z.literal('assistant'),
      content: content.optional(),
      tool_calls: nullish(z.array(toolCall)),
      prefix: z.boolean().optional(),
    }),
    obj({
      role: z.literal('tool'),
      content,
      tool_call_id: nullish(z.string().max(MAX_ID_CHARS)),
      name: nullish(z.string().max(MAX_ID_CHARS)),
    }),
  ]);

  const responseFormat = obj({
    type: z.enum(['text', 'json_object', 'json_schema']).optional(),
    json_schema: nullish(
      obj({
        name: z.string().max(MAX_ID_CHARS),
        description: nullish(z.string()),
        schema: freeObject,
        strict: z.boolean().optional(),
      }),
    ),
  });

  const toolConfiguration = nullish(
    obj({
      exclude: nullish(z.array(z.string())),
      include: nullish(z.array(z.string())),
      requires_confirmation: nullish(z.array(z.string())),
    }),
  );
  const builtIn = <T extends string>(type: T) =>
    obj({ type: z.literal(type), tool_configuration: toolConfiguration });
  const connectorAuth = z.discriminatedUnion('type', [
    obj({ type: z.literal('api-key'), value: z.string() }),
    obj({ type: z.literal('oauth2-token'), value: z.string() }),
  ]);
  const tool = z.discriminatedUnion('type', [
    obj({
      type: z.literal('function'),
      function: obj({
        name: z.string().max(MAX_ID_CHARS),
        description: z.string().optional(),
        strict: z.boolean().optional(),
        parameters: freeObject,
      }),
    }),
    builtIn('web_search'),
    builtIn('web_search_premium'),
    builtIn('code_interpreter'),
    builtIn('image_generation'),
    obj({
      type: z.literal('document_library'),
      tool_configuration: toolConfiguration,
      library_ids: z.array(z.string()).min(1),
    }),
    obj({
      type: z.literal('connector'),
      connector_id: idString,
      authorization: nullish(connectorAuth),
      tool_configuration: toolConfiguration,
    }),
  ]);
  const toolChoice = z.union([
    z.enum(['auto', 'none', 'any', 'required']),
    obj({ type: z.literal('function').optional(), function: obj({ name: z.string() }) }),
  ]);

  return {
    textChunk,
    imageUrlChunk,
    documentUrlChunk,
    fileChunk,
    message,
    responseFormat,
    tool,
    toolChoice,
  };
}

/** The parts `buildParts` returns. */
export type Parts = ReturnType<typeof buildParts>;

// Guardrail configs are the one nested part the spec leaves open (`additionalProperties` unset,
// so the server ignores extra keys): they stay loose whatever the profile says. Threshold keys
// are the union of the v1 and v2 moderation categories.
const CATEGORIES = [
  'sexual',
  'hate_and_discrimination',
  'violence_and_threats',
  'dangerous_and_criminal_content',
  'dangerous',
  'criminal',
  'selfharm',
  'health',
  'financial',
  'law',
  'pii',
  'jailbreaking',
] as const;
const thresholds = z.looseObject(
  Object.fromEntries(CATEGORIES.map((name) => [name, nullish(z.number())])),
);
const moderationConfig = z
  .looseObject({
    model_name: z.string().max(MAX_ID_CHARS).optional(),
    custom_category_thresholds: thresholds.nullable().optional(),
    ignore_other_categories: z.boolean().optional(),
    action: z.enum(['none', 'block']).optional(),
  })
  .nullable()
  .optional();

/** One entry of `guardrails`; open to unknown keys, as in the spec. */
export const guardrailConfig = z.looseObject({
  block_on_error: z.boolean().optional(),
  moderation_llm_v1: moderationConfig,
  moderation_llm_v2: moderationConfig,
});

/** The sampling fields chat, FIM and agents completions share, with the spec's bounds. */
export const samplingFields = {
  max_tokens: nullish(z.number().int().min(0)),
  stream: z.boolean().optional(),
  stop: nullish(z.union([z.string(), z.array(z.string())])),
  random_seed: nullish(z.number().int().min(0)),
  metadata: nullish(freeObject),
  prompt_cache_key: nullish(z.string().max(MAX_ID_CHARS)),
};

/** `temperature` and `top_p`, which agents completions do not take. */
export const temperatureFields = {
  temperature: nullish(z.number().min(0).max(1.5)),
  top_p: nullish(z.number().gt(0).max(1)),
};
