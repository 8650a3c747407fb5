import type { FastifyReply, FastifyRequest } from 'fastify';
import { GuardError } from '../errors.js';
import { checkDepth, MAX_JSON_DEPTH } from '../mistral/depth.js';
import {
  countMessages,
  ENDPOINTS,
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
import { isJsonContentType, parseJsonBody, readBody } from './body.js';
import type { RequestContext } from './context.js';
import { forward } from './forward.js';
import {
  inspectAnswer,
  inspectRequest,
  newOutcome,
  redactErrorMessage,
  StreamGuard,
} from './guard.js';
import { upstreamHeaders } from './headers.js';
import { estimateTokens } from './limits.js';
import { abortOnClientClose, isEventStream, readUpstreamJson, relayEventStream } from './relay.js';
import type { HandlerDeps } from './server.js';
import { record, sendError } from './server.js';

type Finish = (status: number, body: unknown, headers?: Record<string, string>) => Promise<unknown>;

const BY_PATH = new Map<string, EndpointSpec>(ENDPOINTS.map((e) => [e.path, e]));

/** The inspected endpoint for a request line, matched exactly (no prefix, no normalising). */
export function inspectedEndpoint(method: string, path: string): EndpointSpec | undefined {
  return method === 'POST' ? BY_PATH.get(path) : undefined;
}

/**
 * Authorised request to an inspected endpoint: read the body within the profile's limit, validate
 * it against the API schema, apply the key's policy, forward it and relay the answer.
 */
export async function handleInspected(
  request: FastifyRequest,
  reply: FastifyReply,
  endpoint: EndpointSpec,
  deps: HandlerDeps,
  finish: Finish,
): Promise<unknown> {
  const ctx = request.ctx;
  ctx.action = endpoint.action;
  const policy = ctx.policy!;

  if (!isJsonContentType(request.headers['content-type'])) {
    throw new GuardError('unsupported_media_type');
  }
  const body = parseJsonBody(await readBody(request.raw, policy.maxBodyBytes));
  const tooDeep = checkDepth(body);
  if (tooDeep !== null) {
    throw new GuardError('invalid_request', {
      message: `${tooDeep} is nested too deeply: at most ${MAX_JSON_DEPTH} levels.`,
      param: tooDeep,
    });
  }
  validate(endpoint, body, policy);
  const payload = body as Record<string, unknown>;
  ctx.stream = endpoint.streamable && isStream(payload);
  checkModel(endpoint, payload, policy, ctx);
  enforceMaxTokens(endpoint, payload, policy);
  const guard = deps.guards.get(ctx.environment!);
  if (guard) {
    ctx.guard = newOutcome();
    inspectRequest(guard, endpoint, payload, ctx.guard, deps.logger);
  }
  // The reservation: the prompt's estimate plus the most the answer may take.
  // `n` answers each take up to max_tokens.
  const choices = typeof payload.n === 'number' && payload.n > 1 ? payload.n : 1;
  const answerTokens = endpoint.hasMaxTokens ? (maxTokensOf(payload) ?? 0) * choices : 0;
  await deps.limits.reserve(
    ctx,
    estimateTokens(estimatePromptChars(endpoint, payload)) + answerTokens,
  );

  const abort = abortOnClientClose(reply);
  const res = await forward(deps.upstream, deps.upstreamKeys, ctx, (key) => ({
    method: 'POST',
    path: endpoint.path,
    headers: upstreamHeaders(request.headers, key, ctx.requestId, 'application/json'),
    body: JSON.stringify(payload),
    abort,
  }));

  if (ctx.stream && res.statusCode === 200 && isEventStream(res)) {
    reply.hijack();
    const streamGuard =
      guard?.inspectsOutput && ctx.guard ? new StreamGuard(guard, ctx.guard, deps.logger) : null;
    try {
      await relayEventStream(res, reply.raw, ctx, {
        transform: streamGuard ? (data) => streamGuard.event(data) : undefined,
        flush: streamGuard ? () => streamGuard.finish() : undefined,
        beforeDone: async () => {
          ctx.status = 200;
          await record(ctx, deps);
        },
      });
      reply.raw.end();
    } catch (error) {
      if (ctx.status === 200 && !ctx.errorCode) {
        // The audit event was written at [DONE]; what failed afterwards is a transport detail.
        reply.raw.end();
        return;
      }
      await sendError(request, reply, error, deps);
    }
    return;
  }
  const answer = await readUpstreamJson(res, ctx);
  if (guard?.inspectsOutput && ctx.guard && answer.status < 300) {
    inspectAnswer(guard, answer.json, ctx.guard, deps.logger);
  }
  if (answer.status >= 400) redactErrorMessage(guard, answer.json);
  return finish(answer.status, answer.json, answer.headers);
}

function validate(endpoint: EndpointSpec, body: unknown, policy: EffectivePolicy): void {
  const schema = getSchemas(policy.allowUnknownFields)[endpoint.schemaName];
  const result = schema.safeParse(body);
  if (!result.success) {
    const issues = formatIssues(result.error);
    throw new GuardError('invalid_request', {
      message: `The request body is not valid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      param: issues[0]?.path ?? null,
      issues,
    });
  }
  const messages = countMessages(body as Record<string, unknown>);
  if (messages > policy.maxMessages) {
    throw new GuardError('invalid_request', {
      message: `Too many messages: ${messages}, at most ${policy.maxMessages}.`,
      param: 'messages',
    });
  }
  for (const message of messageSizes(endpoint, body as Record<string, unknown>)) {
    if (message.chars > policy.maxMessageChars) {
      throw new GuardError('invalid_request', {
        message: `${message.path} is too long: at most ${policy.maxMessageChars} characters.`,
        param: message.path,
      });
    }
  }
}

function checkModel(
  endpoint: EndpointSpec,
  body: Record<string, unknown>,
  policy: EffectivePolicy,
  ctx: RequestContext,
): void {
  const model = modelOf(body);
  ctx.model = model ?? null;
  if (model === undefined) {
    // Agent completions name an agent, not a model (and OCR may name none): they can only pass
    // a policy that allows any model, since the model that will serve them is not known here.
    if (!allowsAnyModel(policy)) {
      throw new GuardError('model_not_allowed', {
        message: 'The request names no model, and this key may use only some models.',
        param: endpoint.action === 'agents.complete' ? 'agent_id' : 'model',
      });
    }
    return;
  }
  if (!modelAllowed(policy, model)) throw new GuardError('model_not_allowed', { param: 'model' });
}

function enforceMaxTokens(
  endpoint: EndpointSpec,
  body: Record<string, unknown>,
  policy: EffectivePolicy,
): void {
  if (!endpoint.hasMaxTokens) return;
  const requested = maxTokensOf(body);
  if (requested === undefined || requested === null) {
    // No cap asked for means the model's own maximum: the policy's cap applies instead.
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
