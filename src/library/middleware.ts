import { type ErrorBody, isGuardError, toErrorBody } from '../errors.js';
import type { EndpointAction } from '../mistral/endpoints.js';
import { bindClient, type GuardedMistral } from './client.js';
import type { AuditContext, GuardRuntime } from './runtime.js';
import { endpointOf } from './validate.js';
import type {
  ChatModerationRequestBody,
  ChatRequestBody,
  EmbeddingRequestBody,
  FimRequestBody,
  ModerationRequestBody,
} from './wire.js';

/** The endpoints a web app's own route can be guarded as, and the body each one takes. */
export interface GuardedBodies {
  chat: ChatRequestBody;
  fim: FimRequestBody;
  embeddings: EmbeddingRequestBody;
  moderations: ModerationRequestBody;
  'chat.moderations': ChatModerationRequestBody;
}

export type GuardedEndpoint = keyof GuardedBodies;

const ACTIONS: Record<GuardedEndpoint, EndpointAction> = {
  chat: 'chat.complete',
  fim: 'fim.complete',
  embeddings: 'embeddings.create',
  moderations: 'moderations.create',
  'chat.moderations': 'chat.moderations.create',
};

/** The action name of a guarded endpoint, as `toSdkRequest` and audit events spell it. */
export function actionOf(endpoint: GuardedEndpoint): EndpointAction {
  return ACTIONS[endpoint];
}

/** What the middleware leaves on a request it let through. */
export interface GuardedRequest<T = ChatRequestBody> {
  /** The checked body in the API's shape: `max_tokens` set by policy, redactions applied. */
  body: T;
  /** Who the request is for; the guarded client's calls are audited with it. */
  context: AuditContext & { requestId: string };
  /** The guarded client bound to this request's context; null when none was given. */
  client: GuardedMistral | null;
}

/** Options both middlewares share. */
export interface MiddlewareHooks<Req> {
  /** The application user behind a request (from its session or token); audited and limited. */
  userId?(request: Req): string | null | undefined;
  /**
   * Shapes the app's own body into an API request before it is checked: add the model the
   * server picks, drop fields the app does not take. Runs on the parsed JSON.
   */
  body?(raw: unknown, request: Req): unknown;
}

/** What checking one incoming body gives: the request to hand on, or the answer to send. */
export type CheckResult =
  | { ok: true; guarded: GuardedRequest<unknown> }
  | { ok: false; status: number; body: ErrorBody; headers: Record<string, string> };

/**
 * Checks an incoming body as the gateway checks a request (schema, counts, model, max_tokens,
 * content guard), without limits: the guarded client takes those when the call is made. `read`
 * gives the parsed JSON body, so a body that cannot be read is refused the same way. A refusal is
 * audited and logged here; its answer carries the field details, never a value.
 */
export async function checkIncoming<Req>(
  runtime: GuardRuntime,
  endpoint: GuardedEndpoint,
  read: () => unknown,
  request: Req,
  who: AuditContext & { requestId: string; method: string; path: string },
  hooks: MiddlewareHooks<Req>,
  client: GuardedMistral | null,
): Promise<CheckResult> {
  const spec = endpointOf(ACTIONS[endpoint]);
  const ctx = runtime.newContext(spec.action, who.method, who.path, who);
  try {
    const raw = await read();
    const body = hooks.body ? hooks.body(raw, request) : raw;
    runtime.inspect(ctx, spec, body);
    const context = {
      userId: who.userId ?? null,
      clientIp: who.clientIp ?? null,
      requestId: who.requestId,
      userAgent: who.userAgent ?? null,
    };
    const bound = client ? bindClient(client, context, ctx.guard) : null;
    return { ok: true, guarded: { body, context, client: bound } };
  } catch (error) {
    return refusal(await runtime.fail(ctx, error), who.requestId);
  }
}

/** The answer for an error: its status, Mistral-shaped body and headers, a generic 500 if not ours. */
export function refusal(error: unknown, requestId: string): CheckResult & { ok: false } {
  const { status, body } = toErrorBody(error, requestId);
  const extra = isGuardError(error) ? (error.headers ?? {}) : {};
  return { ok: false, status, body, headers: { ...extra, 'x-request-id': requestId } };
}

/**
 * The checked request a guarded route's middleware left, typed by its endpoint. Throws when the
 * route is not guarded: a handler must not read an unchecked body by mistake.
 *
 * @example
 * const { body, context, client } = guardedRequestOf(request, 'chat');
 */
export function guardedRequestOf<E extends GuardedEndpoint = 'chat'>(
  request: object,
  _endpoint?: E,
): GuardedRequest<GuardedBodies[E]> {
  const guarded = (request as { mistralGuard?: GuardedRequest<unknown> | null }).mistralGuard;
  if (!guarded) throw new Error('this route is not guarded by mistral-guard');
  return guarded as GuardedRequest<GuardedBodies[E]>;
}
