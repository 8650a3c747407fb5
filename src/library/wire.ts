/**
 * Request bodies as the Mistral HTTP API takes them (snake_case JSON), the shape the validators
 * return. The main fields are typed; free-form parts (tool schemas, guardrail settings) are left
 * open. Fields the API does not know pass only under a policy with `allowUnknownFields`.
 */

export interface TextChunk {
  type: 'text';
  text: string;
}

export interface ImageUrlChunk {
  type: 'image_url';
  image_url: string | { url: string; detail?: 'low' | 'auto' | 'high' | null };
}

export interface DocumentUrlChunk {
  type: 'document_url';
  document_url: string;
  document_name?: string | null;
}

export interface FileChunk {
  type: 'file';
  file_id: string;
}

export interface ReferenceChunk {
  type: 'reference';
  reference_ids: Array<number | string>;
}

export interface AudioChunk {
  type: 'input_audio';
  input_audio: string;
}

export interface ThinkingChunk {
  type: 'thinking';
  thinking: Array<Partial<TextChunk> | Record<string, unknown>>;
  signature?: string | null;
  closed?: boolean;
}

export type ContentChunk =
  | TextChunk
  | ImageUrlChunk
  | DocumentUrlChunk
  | FileChunk
  | ReferenceChunk
  | AudioChunk
  | ThinkingChunk;

export interface ToolCall {
  id?: string;
  type?: 'function';
  function: { name: string; arguments: string | Record<string, unknown> };
  index?: number;
}

export interface SystemMessage {
  role: 'system';
  content: string | Array<TextChunk | ThinkingChunk>;
}

export interface UserMessage {
  role: 'user';
  content: string | ContentChunk[] | null;
}

export interface AssistantMessage {
  role: 'assistant';
  content?: string | ContentChunk[] | null;
  tool_calls?: ToolCall[] | null;
  prefix?: boolean;
}

export interface ToolMessage {
  role: 'tool';
  content: string | ContentChunk[] | null;
  tool_call_id?: string | null;
  name?: string | null;
}

export type ChatMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage;

/** Sampling fields shared by chat and FIM completions. */
interface CompletionFields {
  model: string;
  temperature?: number | null;
  top_p?: number | null;
  /** Always set on a validated body: the policy fills in its cap when the caller did not. */
  max_tokens?: number | null;
  stream?: boolean;
  stop?: string | string[] | null;
  random_seed?: number | null;
  metadata?: Record<string, unknown> | null;
  prompt_cache_key?: string | null;
}

/** `POST /v1/chat/completions`. */
export interface ChatRequestBody extends CompletionFields {
  messages: ChatMessage[];
  response_format?: {
    type?: 'text' | 'json_object' | 'json_schema';
    json_schema?: {
      name: string;
      description?: string | null;
      schema: Record<string, unknown>;
      strict?: boolean;
    } | null;
  };
  tools?: Array<{ type: string } & Record<string, unknown>> | null;
  tool_choice?:
    | 'auto'
    | 'none'
    | 'any'
    | 'required'
    | { type?: 'function'; function: { name: string } };
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  n?: number | null;
  prediction?: { type?: 'content'; content?: string };
  parallel_tool_calls?: boolean;
  reasoning_effort?: 'none' | 'minimal' | 'low' | 'medium' | 'high' | 'xhigh' | null;
  prompt_mode?: 'reasoning' | null;
  guardrails?: Array<Record<string, unknown>> | null;
  service_tier?: 'auto' | 'standard_only' | null;
  safe_prompt?: boolean;
}

/** `POST /v1/fim/completions`. */
export interface FimRequestBody extends CompletionFields {
  prompt: string;
  suffix?: string | null;
  min_tokens?: number | null;
}

/** `POST /v1/embeddings`. */
export interface EmbeddingRequestBody {
  model: string;
  input: string | string[];
  metadata?: Record<string, unknown> | null;
  output_dimension?: number | null;
  output_dtype?: 'float' | 'int8' | 'uint8' | 'binary' | 'ubinary';
  encoding_format?: 'float' | 'base64';
}

/** `POST /v1/moderations` (and `/v1/classifications`, which takes the same body). */
export interface ModerationRequestBody {
  model: string;
  input: string | string[];
  metadata?: Record<string, unknown> | null;
}

/** `POST /v1/chat/moderations`: one conversation, or a list of them. */
export interface ChatModerationRequestBody {
  model: string;
  input: ChatMessage[] | ChatMessage[][];
}
