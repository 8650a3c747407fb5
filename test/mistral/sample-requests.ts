/**
 * Realistic request bodies for each inspected endpoint, built fresh on every call so a test may
 * edit one in place. Values follow the spec's examples where it has them.
 */
import type { SchemaName } from '../../src/mistral/schemas.js';

type Body = Record<string, unknown>;

/** A chat request using most of what the spec allows. */
export function chatRequest(): Body {
  return {
    model: 'mistral-large-latest',
    messages: [
      { role: 'system', content: 'You are a terse assistant.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Who is the best French painter? Answer in one short sentence.' },
          { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } },
        ],
      },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'call_1',
            type: 'function',
            function: { name: 'lookup', arguments: '{"q":"painters"}' },
            index: 0,
          },
        ],
      },
      { role: 'tool', content: 'Monet, Cezanne', tool_call_id: 'call_1', name: 'lookup' },
      {
        role: 'assistant',
        content: [
          { type: 'thinking', thinking: [{ type: 'text', text: 'Pick one.' }], closed: true },
          { type: 'text', text: 'Monet.' },
        ],
      },
      { role: 'user', content: 'Why?' },
    ],
    temperature: 0.3,
    top_p: 1,
    max_tokens: 512,
    stream: false,
    stop: ['\n\n'],
    random_seed: 42,
    metadata: { team: 'search' },
    response_format: {
      type: 'json_schema',
      json_schema: { name: 'answer', schema: { type: 'object' }, strict: true },
    },
    tools: [
      {
        type: 'function',
        function: {
          name: 'lookup',
          description: 'Looks a painter up.',
          parameters: { type: 'object', properties: { q: { type: 'string' } } },
        },
      },
      { type: 'web_search' },
      { type: 'document_library', library_ids: ['lib-1'] },
    ],
    tool_choice: 'auto',
    presence_penalty: 0,
    frequency_penalty: 0.5,
    n: 1,
    prediction: { type: 'content', content: 'Monet' },
    parallel_tool_calls: true,
    reasoning_effort: null,
    prompt_mode: null,
    guardrails: [{ block_on_error: false, moderation_llm_v2: { action: 'block' } }],
    prompt_cache_key: 'conversation-7',
    service_tier: 'auto',
    safe_prompt: false,
  };
}

/** A FIM request, from the spec's examples. */
export function fimRequest(): Body {
  return {
    model: 'codestral-latest',
    prompt: 'def',
    suffix: 'return a+b',
    max_tokens: 64,
    min_tokens: 1,
    temperature: 0,
    stream: true,
  };
}

/** An agents completion: an agent id, no model. */
export function agentsRequest(): Body {
  return {
    agent_id: 'ag_0123456789',
    messages: [
      {
        role: 'user',
        content: 'Who is the best French painter? Answer in one short sentence.',
      },
      {
        role: 'assistant',
        tool_calls: [{ function: { name: 'lookup', arguments: { q: 'painters' } } }],
      },
      { role: 'tool', content: [{ type: 'text', text: 'Monet' }], tool_call_id: null },
    ],
    max_tokens: 100,
    tool_choice: { type: 'function', function: { name: 'lookup' } },
  };
}

/** An embeddings request, from the spec's examples. */
export function embeddingRequest(): Body {
  return {
    model: 'mistral-embed',
    input: ['Embed this sentence.', 'As well as this one.'],
    output_dtype: 'float',
    encoding_format: 'float',
  };
}

/** A text moderation (or classification) request. */
export function classificationRequest(): Body {
  return { model: 'mistral-moderation-latest', input: 'I want to hurt someone.' };
}

/** A chat moderation of two conversations. */
export function chatModerationRequest(): Body {
  return {
    model: 'mistral-moderation-latest',
    input: [
      [{ role: 'user', content: 'Hello' }],
      [
        { role: 'user', content: 'How do I pick a lock?' },
        { role: 'assistant', content: 'I cannot help.' },
      ],
    ],
  };
}

/** A chat classification of one conversation. */
export function chatClassificationRequest(): Body {
  return {
    model: 'ft:classifier:abc',
    input: { messages: [{ role: 'user', content: [{ type: 'text', text: 'Classify me' }] }] },
  };
}

/** An OCR request for a document by URL. */
export function ocrRequest(): Body {
  return {
    model: 'mistral-ocr-latest',
    document: { type: 'document_url', document_url: 'https://arxiv.org/pdf/2201.04234' },
    pages: [0, 1],
    include_image_base64: false,
    table_format: 'markdown',
    document_annotation_prompt: 'Extract the title.',
    document_annotation_format: { type: 'json_object' },
  };
}

/** One sample per schema. */
export const SAMPLES: Record<SchemaName, () => Body> = {
  ChatCompletionRequest: chatRequest,
  FIMCompletionRequest: fimRequest,
  AgentsCompletionRequest: agentsRequest,
  EmbeddingRequest: embeddingRequest,
  ClassificationRequest: classificationRequest,
  ChatModerationRequest: chatModerationRequest,
  ChatClassificationRequest: chatClassificationRequest,
  OCRRequest: ocrRequest,
};
