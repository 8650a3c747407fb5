/**
 * The checks an inspected request body passes before it may leave, in the order the gateway runs
 * them: nesting depth, the API schema, message counts and sizes, the model policy, then the
 * `max_tokens` cap. The gateway and the library both call these, so the same body under the same
 * policy gets the same decision, the same error code and the same field path in either.
 *
 * Every function takes a body already parsed from JSON. Bodies are edited in place only where
 * the policy says so (`max_tokens` filled in or clamped); nothing else is rewritten here.
 */
import { GuardError } from '../errors.js';
import { estimateTokens } from '../gateway/limits.js';
import { checkDepth, MAX_JSON_DEPTH } from '../mistral/depth.js';
import {
  type Body,
  countMessages,
  type EndpointSpec,
  estimatePromptChars,
  isStream,
  maxTokensOf,
  messageSizes,
  modelOf,
  setMaxTokens,
} from '../mistral/endpoints.js';
import { formatIssues } from '../mistral/issues.js';
import { getSchemas } from '../mistral/schemas.js';
import { allowsAnyModel, type EffectivePolicy, modelAllowed } from '../policy/policy.js';

/** What the checks learn about a request; a gateway request context fits as it is. */
export interface RequestFacts {
  /** The model the body names; null when it names none (agents completions). */
  model: string | null;
  /** True when the body asks for an SSE answer on an endpoint that can stream. */
  stream: boolean;
}

/** Refuses a body nested deeper than `MAX_JSON_DEPTH`, naming the first field too deep. */
export function checkBodyDepth(body: unknown): void {
  const tooDeep = checkDepth(body);
  if (tooDeep === null) return;
  throw new GuardError('invalid_request', {
    message: `${tooDeep} is nested too deeply: at most ${MAX_JSON_DEPTH} levels.`,
    param: tooDeep,
  });
}

/**
 * Checks a body against the endpoint's API schema (strict unless the policy allows unknown
 * fields), then the policy's message count and per-message size. Throws `invalid_request` with
 * every offending field in `issues`.
 *
 * @example
 * validateBody(chatEndpoint, { model: 'mistral-small-latest', messages: 'hi' }, policy);
 * // throws GuardError { code: 'invalid_request', issues: [{ path: 'messages', ... }] }
 */
export function validateBody(endpoint: EndpointSpec, body: unknown, policy: EffectivePolicy): void {
  const schema = getSchemas(policy.allowUnknownFields)[endpoint.schemaName];
  const result = schema.safeParse(body);
  if (!result.success) {
    const issues = formatIssues(result.error);
    // An issue of the body as a whole (an array sent for an object) has the empty path.
    const where = (path: string) => (path === '' ? 'the body' : path);
    throw new GuardError('invalid_request', {
      message: `The request body is not valid: ${issues.map((i) => `${where(i.path)}: ${i.message}`).join('; ')}`,
      param: issues[0]?.path || null,
      issues,
    });
  }
  const messages = countMessages(body as Body);
  if (messages > policy.maxMessages) {
    throw new GuardError('invalid_request', {
      message: `Too many messages: ${messages}, at most ${policy.maxMessages}.`,
      param: 'messages',
    });
  }
  for (const message of messageSizes(endpoint, body as Body)) {
    if (message.chars > policy.maxMessageChars) {
      throw new GuardError('invalid_request', {
        message: `${message.path} is too long: at most ${policy.maxMessageChars} characters.`,
        param: message.path,
      });
    }
  }
}

/**
 * Refuses a model the policy does not allow (`model_not_allowed`). A body naming no model (an
 * agents completion) passes only a policy that allows every model, since the model that will
 * serve it is not known here.
 */
export function checkModel(endpoint: EndpointSpec, body: Body, policy: EffectivePolicy): void {
  const model = modelOf(body);
  if (model === undefined) {
    if (allowsAnyModel(policy)) return;
    throw new GuardError('model_not_allowed', {
      message: 'The request names no model, and this key may use only some models.',
      param: endpoint.action === 'agents.complete' ? 'agent_id' : 'model',
    });
  }
  if (!modelAllowed(policy, model)) throw new GuardError('model_not_allowed', { param: 'model' });
}

/**
 * Applies the policy's `max_tokens` cap: an absent or null value is set to the cap (no cap asked
 * for means the model's own maximum), a value above it is lowered under `clamp` and refused with
 * `max_tokens_exceeded` under `reject`.
 */
export function enforceMaxTokens(
  endpoint: EndpointSpec,
  body: Body,
  policy: EffectivePolicy,
): void {
  if (!endpoint.hasMaxTokens) return;
  const requested = maxTokensOf(body);
  if (requested === undefined || requested === null) {
    setMaxTokens(body, policy.maxTokens);
    return;
  }
  if (requested <= policy.maxTokens) return;
  if (policy.maxTokensAction === 'clamp') {
    setMaxTokens(body, policy.maxTokens);
    return;
  }
  throw new GuardError('max_tokens_exceeded', {
    message: `max_tokens is ${requested}; this key allows at most ${policy.maxTokens}.`,
    param: 'max_tokens',
  });
}

/**
 * Runs every check in the gateway's order and records what it learns in `facts` as it goes, so
 * a refusal by the model policy is still audited under the model it named.
 *
 * @example
 * const facts = { model: null, stream: false };
 * checkRequest(chatEndpoint, body, policy, facts); // throws GuardError, or edits max_tokens
 */
export function checkRequest(
  endpoint: EndpointSpec,
  body: unknown,
  policy: EffectivePolicy,
  facts: RequestFacts,
): asserts body is Body {
  checkBodyDepth(body);
  validateBody(endpoint, body, policy);
  const payload = body as Body;
  facts.stream = endpoint.streamable && isStream(payload);
  facts.model = modelOf(payload) ?? null;
  checkModel(endpoint, payload, policy);
  enforceMaxTokens(endpoint, payload, policy);
}

/**
 * The tokens a request holds against its limits until it is settled: an estimate of its prompt
 * plus the most its answer may take.
 */
export function reservedTokens(endpoint: EndpointSpec, body: Body): number {
  // `n` answers each take up to max_tokens.
  const choices = typeof body.n === 'number' && body.n > 1 ? body.n : 1;
  const answer = endpoint.hasMaxTokens ? (maxTokensOf(body) ?? 0) * choices : 0;
  return estimateTokens(estimatePromptChars(endpoint, body)) + answer;
}
