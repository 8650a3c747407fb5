import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  preHandlerAsyncHookHandler,
  RouteOptions,
} from 'fastify';
import { loadConfig } from '../config/load.js';
import { type ErrorCode, GuardError, isGuardError } from '../errors.js';
import { isJsonContentType } from '../gateway/body.js';
import { type GuardedMistral, runtimeOf } from './client.js';
import {
  actionOf,
  checkIncoming,
  type GuardedEndpoint,
  type GuardedRequest,
  type MiddlewareHooks,
  refusal,
} from './middleware.js';
import { GuardRuntime, type GuardRuntimeOptions } from './runtime.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Guards this route's body as a request to that endpoint (`true`: chat). */
    mistralGuard?: GuardedEndpoint | true;
  }
  interface FastifyRequest {
    /** Set on a guarded route once its body passed; read it with `guardedRequestOf`. */
    mistralGuard: GuardedRequest<unknown> | null;
  }
}

/** Options of the Fastify plugin. */
export interface MistralGuardFastifyOptions
  extends GuardRuntimeOptions,
    MiddlewareHooks<FastifyRequest> {
  /**
   * A guarded client (from `createGuardedClient`): the plugin shares its configuration,
   * environment, limits and audit sink, and gives each guarded request a view of it bound to
   * the request's audit context. Without it the plugin builds its own from the other options.
   */
  client?: GuardedMistral;
}

/** Fastify's body errors, as the catalogue names them. */
const BODY_ERRORS: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
};

/**
 * A Fastify plugin that guards an app's own endpoints. A route opts in with
 * `config: { mistralGuard: 'chat' }` (or `fim`, `embeddings`, `moderations`,
 * `chat.moderations`); its JSON body is then checked as the gateway checks a request (schema,
 * message counts and sizes, model policy, `max_tokens`, content guard) before the handler runs.
 *
 * A refused body is answered with the gateway's error body: 400 with `param` and every field in
 * `issues` (403 for a model, 413, 415), and an audit event. What passes is on
 * `request.mistralGuard`: the checked body, the audit context (user id, client address,
 * request id) and the guarded client bound to it. Anything a guarded route throws that is not a
 * GuardError becomes a generic 500; its detail goes to the log only. The route's body limit
 * defaults to the profile's `maxBodyBytes`. Register the plugin before the routes it guards.
 *
 * @example
 * await app.register(mistralGuardFastify, { client, userId: (req) => req.headers['x-user'] });
 * app.post('/api/chat', { config: { mistralGuard: 'chat' } }, async (request) => {
 *   const { body, client } = guardedRequestOf(request, 'chat');
 *   return client!.chat.complete(toSdkRequest('chat.complete', body));
 * });
 */
export async function mistralGuardFastify(
  app: FastifyInstance,
  options: MistralGuardFastifyOptions,
): Promise<void> {
  const shared = options.client ? runtimeOf(options.client) : undefined;
  if (options.client && !shared) {
    throw new TypeError('`client` must be a guarded client made by createGuardedClient');
  }
  const runtime = shared ?? new GuardRuntime(options.config ?? (await loadConfig()), options);
  if (!shared) app.addHook('onClose', () => runtime.close());
  const onError = errorHandler(runtime, options);

  app.decorateRequest('mistralGuard', null);
  app.addHook('onRoute', (route: RouteOptions) => {
    const endpoint = endpointOf(route.config?.mistralGuard);
    if (!endpoint) return;
    route.bodyLimit ??= runtime.policy.maxBodyBytes;
    const before = route.preHandler ?? [];
    const guard = guardHandler(runtime, endpoint, options);
    route.preHandler = [...(Array.isArray(before) ? before : [before]), guard];
    route.errorHandler ??= onError;
  });
}

function endpointOf(setting: GuardedEndpoint | true | undefined): GuardedEndpoint | null {
  return setting === true ? 'chat' : (setting ?? null);
}

/** The preHandler of one guarded route: checks the body, or answers the refusal. */
function guardHandler(
  runtime: GuardRuntime,
  endpoint: GuardedEndpoint,
  options: MistralGuardFastifyOptions,
): preHandlerAsyncHookHandler {
  return async function mistralGuard(this: FastifyInstance, request, reply) {
    const read = () => {
      // Fastify parses text too; a guarded route takes JSON only, as the gateway does.
      if (!isJsonContentType(request.headers['content-type'])) {
        throw new GuardError('unsupported_media_type');
      }
      if (request.body === undefined) {
        throw new GuardError('invalid_json', { message: 'The request body is empty.' });
      }
      return request.body;
    };
    const who = whoOf(request, options);
    const client = options.client ?? null;
    const result = await checkIncoming(runtime, endpoint, read, request, who, options, client);
    if (result.ok) {
      request.mistralGuard = result.guarded;
      return;
    }
    return reply.code(result.status).headers(result.headers).send(result.body);
  };
}

/**
 * The error handler of guarded routes. A body Fastify could not read is refused (and audited)
 * with the gateway's code; anything else becomes its error body, a generic 500 unless it is a
 * GuardError, whose detail only the log sees.
 */
function errorHandler(runtime: GuardRuntime, options: MistralGuardFastifyOptions) {
  return async (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const code = BODY_ERRORS[error.code];
    if (code) {
      const who = whoOf(request, options);
      const endpoint = endpointOf(request.routeOptions.config.mistralGuard);
      const ctx = runtime.newContext(
        endpoint ? actionOf(endpoint) : 'unknown',
        who.method,
        who.path,
        who,
      );
      const answer = refusal(await runtime.fail(ctx, new GuardError(code)), who.requestId);
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    }
    // Calls of the guarded client were audited where they failed; others are logged here.
    if (!isGuardError(error)) {
      runtime.logger.error({ err: error, requestId: request.id }, 'request failed');
    }
    const answer = refusal(error, request.id);
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  };
}

// Registered at the caller's level, not in a child context, so its hook sees the caller's routes.
Object.assign(mistralGuardFastify, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'mistral-guard',
});

function whoOf(request: FastifyRequest, hooks: MiddlewareHooks<FastifyRequest>) {
  const ua = request.headers['user-agent'];
  return {
    requestId: request.id,
    method: request.method,
    path: request.url.split('?', 1)[0] ?? '/',
    userId: hooks.userId?.(request) ?? null,
    clientIp: request.ip,
    userAgent: typeof ua === 'string' ? ua : null,
  };
}
