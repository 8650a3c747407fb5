/**
 * Request schemas of the inspected Mistral endpoints, named after the spec component each
 * operation takes. Both variants (strict and relaxed) are built once when the module loads:
 * building zod schemas is far slower than running them, so never build them per request.
 *
 * The schemas only validate. The gateway forwards the body it parsed, never zod's output, so
 * nothing here may transform or default a value.
 */
import { z } from 'zod';
import {
  buildParts,
  guardrailConfig,
  idString,
  MAX_TOOLS,
  nullish,
  type ObjectFactory,
  samplingFields,
  temperatureFields,
} from './schema-parts.js';

/** The spec component names of the inspected request bodies. */
export type SchemaName =
  | 'ChatCompletionRequest'
  | 'FIMCompletionRequest'
  | 'AgentsCompletionRequest'
  | 'EmbeddingRequest'
  | 'ClassificationRequest'
  | 'ChatModerationRequest'
  | 'ChatClassificationRequest'
  | 'OCRRequest';

/** One validating schema per inspected request body. */
export type SchemaSet = Readonly<Record<SchemaName, z.ZodType>>;

/** How the schema set treats fields the spec does not know. */
export interface SchemaOptions {
  /** Keep unknown fields instead of refusing them (the API itself refuses them with a 422). */
  allowUnknownFields: boolean;
}

/**
 * Builds the request schemas. Costly: call it at startup, or use `getSchemas`.
 *
 * @example
 * const { ChatCompletionRequest } = buildSchemas({ allowUnknownFields: false });
 * ChatCompletionRequest.safeParse(body);
 */
export function buildSchemas(options: SchemaOptions): SchemaSet {
  const obj: ObjectFactory = options.allowUnknownFields ? z.looseObject : z.strictObject;
  const parts = buildParts(obj);
  const messages = z.array(parts.message);
  const textInput = z.union([z.string(), z.array(z.string())]);

  // Agents completions take the chat fields minus model, temperature, top_p and safe_prompt.
  const chatLike = {
    ...samplingFields,
    messages,
    response_format: parts.responseFormat.optional(),
    tools: nullish(z.array(parts.tool).max(MAX_TOOLS)),
    tool_choice: parts.toolChoice.optional(),
    presence_penalty: nullish(z.number().min(-2).max(2)),
    frequency_penalty: nullish(z.number().min(-2).max(2)),
    n: nullish(z.number().int().min(1)),
    prediction: obj({
      type: z.literal('content').optional(),
      content: z.string().optional(),
    }).optional(),
    parallel_tool_calls: z.boolean().optional(),
    reasoning_effort: nullish(z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh'])),
    prompt_mode: nullish(z.literal('reasoning')),
    guardrails: nullish(z.array(guardrailConfig)),
    service_tier: nullish(z.enum(['auto', 'standard_only'])),
  };

  // OCR's `document` is a plain anyOf in the spec, not a discriminated union, and each chunk's
  // `type` has a default there, so a document without `type` is valid.
  const ocrDocument = z.union([
    parts.fileChunk.extend({ type: z.literal('file').optional() }),
    parts.documentUrlChunk.extend({ type: z.literal('document_url').optional() }),
    parts.imageUrlChunk.extend({ type: z.literal('image_url').optional() }),
  ]);

  return Object.freeze({
    ChatCompletionRequest: obj({
      model: idString,
      ...temperatureFields,
      ...chatLike,
      safe_prompt: z.boolean().optional(),
    }),
    AgentsCompletionRequest: obj({ agent_id: idString, ...chatLike }),
    FIMCompletionRequest: obj({
      model: idString,
      ...temperatureFields,
      ...samplingFields,
      prompt: z.string(),
      suffix: nullish(z.string()),
      min_tokens: nullish(z.number().int().min(0)),
    }),
    EmbeddingRequest: obj({
      model: idString,
      metadata: samplingFields.metadata,
      input: textInput,
      output_dimension: nullish(z.number().int().gt(0)),
      output_dtype: z.enum(['float', 'int8', 'uint8', 'binary', 'ubinary']).optional(),
      encoding_format: z.enum(['float', 'base64']).optional(),
    }),
    ClassificationRequest: obj({
      model: idString,
      metadata: samplingFields.metadata,
      input: textInput,
    }),
    ChatModerationRequest: obj({
      model: idString,
      input: z.union([messages, z.array(messages)]),
    }),
    ChatClassificationRequest: obj({
      model: idString,
      input: z.union([obj({ messages }), z.array(obj({ messages }))]),
    }),
    OCRRequest: obj({
      model: idString.nullable(),
      document: ocrDocument,
      pages: nullish(z.union([z.string(), z.array(z.number().int())])),
      include_image_base64: nullish(z.boolean()),
      image_limit: nullish(z.number().int()),
      image_min_size: nullish(z.number().int()),
      bbox_annotation_format: nullish(parts.responseFormat),
      document_annotation_format: nullish(parts.responseFormat),
      document_annotation_prompt: nullish(z.string()),
      table_format: nullish(z.enum(['markdown', 'html'])),
      extract_header: z.boolean().optional(),
      extract_footer: z.boolean().optional(),
      include_blocks: z.boolean().optional(),
      confidence_scores_granularity: nullish(z.enum(['word', 'page', 'block'])),
    }),
  });
}

const STRICT = buildSchemas({ allowUnknownFields: false });
const RELAXED = buildSchemas({ allowUnknownFields: true });

/** The prebuilt schema set for a profile: strict unless the profile allows unknown fields. */
export function getSchemas(allowUnknownFields: boolean): SchemaSet {
  return allowUnknownFields ? RELAXED : STRICT;
}
