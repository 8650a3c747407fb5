import { checkRequest } from '../core/request.js';
import { GuardError } from '../errors.js';
import { ENDPOINTS, type EndpointAction, type EndpointSpec } from '../mistral/endpoints.js';
import { type PolicyInput, resolvePolicy } from './policy.js';
import type {
  ChatModerationRequestBody,
  ChatRequestBody,
  EmbeddingRequestBody,
  FimRequestBody,
  ModerationRequestBody,
} from './wire.js';

/** The inspected endpoint with this action; every action named here exists. */
export function endpointOf(action: EndpointAction): EndpointSpec {
  return ENDPOINTS.find((e) => e.action === action)!;
}

/**
 * Checks a request body as the gateway checks it before forwarding: nesting depth, the API
 * schema, message counts and sizes, the model policy and the `max_tokens` cap. Returns a checked
 * copy (the input is left untouched) with `max_tokens` set as the policy wants it.
 */
function validateFor<T>(action: EndpointAction, input: unknown, policy?: PolicyInput): T {
  const endpoint = endpointOf(action);
  let body: unknown;
  try {
    body = structuredClone(input);
  } catch {
    throw new GuardError('invalid_request', {
      message: 'The request body is not JSON data.',
    });
  }
  checkRequest(endpoint, body, resolvePolicy(policy), { model: null, stream: false });
  return body as T;
}

/**
 * Validates a chat completion request in the API's JSON shape (`max_tokens`, `tool_calls`).
 * Throws a GuardError: `invalid_request` with every offending field in `issues`,
 * `model_not_allowed` or `max_tokens_exceeded`, each with `param` naming the field.
 *
 * @example
 * const body = validateChatRequest(req.body, { models: ['mistral-small-*'], maxTokens: 1024 });
 * body.max_tokens; // 1024 when the caller sent none
 */
export function validateChatRequest(input: unknown, policy?: PolicyInput): ChatRequestBody {
  return validateFor('chat.complete', input, policy);
}

/**
 * Validates a FIM (code completion) request; see `validateChatRequest`.
 *
 * @example
 * validateFimRequest({ model: 'codestral-latest', prompt: 'def add(a, b):' });
 */
export function validateFimRequest(input: unknown, policy?: PolicyInput): FimRequestBody {
  return validateFor('fim.complete', input, policy);
}

/**
 * Validates an embeddings request; see `validateChatRequest`.
 *
 * @example
 * validateEmbeddingRequest({ model: 'mistral-embed', input: ['first', 'second'] });
 */
export function validateEmbeddingRequest(
  input: unknown,
  policy?: PolicyInput,
): EmbeddingRequestBody {
  return validateFor('embeddings.create', input, policy);
}

/**
 * Validates a text moderation request (`/v1/moderations`); see `validateChatRequest`.
 *
 * @example
 * validateModerationRequest({ model: 'mistral-moderation-latest', input: 'some text' });
 */
export function validateModerationRequest(
  input: unknown,
  policy?: PolicyInput,
): ModerationRequestBody {
  return validateFor('moderations.create', input, policy);
}

/**
 * Validates a chat moderation request (`/v1/chat/moderations`); see `validateChatRequest`.
 *
 * @example
 * validateChatModerationRequest({
 *   model: 'mistral-moderation-latest',
 *   input: [{ role: 'user', content: 'some text' }],
 * });
 */
export function validateChatModerationRequest(
  input: unknown,
  policy?: PolicyInput,
): ChatModerationRequestBody {
  return validateFor('chat.moderations.create', input, policy);
}
