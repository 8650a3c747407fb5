import { GuardError } from '../errors.js';
import { isJsonContentType, parseJsonBody } from '../gateway/body.js';
import { applyUsage, type RequestContext } from '../gateway/context.js';
import type { GuardOutcome } from '../gateway/guard.js';
import { inspectAnswer } from '../gateway/guard.js';
import { inspectedEndpoint } from '../gateway/inspected.js';
import { passThroughAllowed } from '../gateway/passthrough.js';
import type { EndpointSpec } from '../mistral/endpoints.js';
import type { AuditContext, GuardRuntime } from './runtime.js';
import { guardEventStream, isEventStream } from './stream.js';

/** Sends a request on to the API: the SDK's own HTTP client, or `fetch`. */
export type Forward = (request: Request) => Promise<Response>;

/** What a guarded call knows about its caller when its request goes out. */
export interface CallScope {
  context: AuditContext;
  /** The guard outcome of an earlier inspection of the same content (the web middleware's). */
  carried?: GuardOutcome | null;
}

/** The SDK's fetch signature. */
export type Fetcher = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

const MODELS_PATH = '/v1/models';

/**
 * A fetch function that puts the gateway's pipeline around every request an SDK client sends.
 * It sees the exact JSON the SDK serialised (snake_case, as on the wire), so the checks, the
 * content guard and the answer guard run on what the gateway would see, with the same functions,
 * and the SDK parses the guarded answer into its own types as usual.
 *
 * Refusals are thrown as GuardError; the SDK wraps what its fetcher throws, and the guarded
 * client unwraps it again. Network failures are rethrown untouched, so the SDK classifies and
 * retries them as it always does. Upstream error answers reach the SDK unchanged.
 */
export function guardedFetcher(
  runtime: GuardRuntime,
  forward: Forward,
  scope: () => CallScope,
  basePath: () => string,
): Fetcher {
  return async (input, init) => {
    const request =
      input instanceof Request && init === undefined ? input : new Request(input, init);
    const path = relativePath(new URL(request.url).pathname, basePath());
    const endpoint = inspectedEndpoint(request.method, path);
    const { context, carried } = scope();
    const ctx = runtime.newContext(endpoint?.action ?? 'unknown', request.method, path, context);
    try {
      if (endpoint) return await inspected(runtime, ctx, endpoint, request, forward, carried);
      return await other(runtime, ctx, request, forward);
    } catch (error) {
      if (error instanceof Forwarding) throw error.cause;
      runtime.settle(ctx);
      throw await runtime.fail(ctx, error);
    }
  };
}

/** A failure of the exchange itself, already recorded, to rethrow to the SDK untouched. */
class Forwarding extends Error {
  override readonly cause: unknown;

  constructor(cause: unknown) {
    super('forwarding failed');
    this.cause = cause;
  }
}

async function inspected(
  runtime: GuardRuntime,
  ctx: RequestContext,
  endpoint: EndpointSpec,
  request: Request,
  forward: Forward,
  carried: GuardOutcome | null | undefined,
): Promise<Response> {
  if (!isJsonContentType(request.headers.get('content-type') ?? undefined)) {
    throw new GuardError('unsupported_media_type');
  }
  const raw = Buffer.from(await request.arrayBuffer());
  if (raw.length > runtime.policy.maxBodyBytes) throw new GuardError('body_too_large');
  const body = parseJsonBody(raw);
  await runtime.admit(ctx, endpoint, body, carried);

  const response = await send(runtime, ctx, forward, withBody(request, JSON.stringify(body)));
  if (response.status < 200 || response.status >= 300) return relayFailure(runtime, ctx, response);
  if (ctx.stream && isEventStream(response)) return guardEventStream(runtime, ctx, response);

  let json: unknown;
  try {
    json = JSON.parse(await response.text());
  } catch (cause) {
    throw new GuardError('upstream_error', { cause });
  }
  applyUsage(ctx, (json as { usage?: unknown } | null)?.usage);
  if (runtime.guard?.inspectsOutput && ctx.guard) {
    inspectAnswer(runtime.guard, json, ctx.guard, runtime.logger);
  }
  await runtime.finish(ctx, response.status);
  runtime.settle(ctx);
  return new Response(JSON.stringify(json), {
    status: response.status,
    statusText: response.statusText,
    headers: answerHeaders(response),
  });
}

/** Model listings always pass, as at the gateway; other paths only the profile's pass-through. */
async function other(
  runtime: GuardRuntime,
  ctx: RequestContext,
  request: Request,
  forward: Forward,
): Promise<Response> {
  const models =
    request.method === 'GET' &&
    (ctx.path === MODELS_PATH || ctx.path.startsWith(`${MODELS_PATH}/`));
  ctx.action = models
    ? ctx.path === MODELS_PATH
      ? 'models.list'
      : 'models.retrieve'
    : 'passthrough';
  if (!models && !passThroughAllowed(ctx)) throw new GuardError('endpoint_not_allowed');
  await runtime.reserve(ctx);
  const response = await send(runtime, ctx, forward, request);
  if (response.status < 200 || response.status >= 300) return relayFailure(runtime, ctx, response);
  await runtime.finish(ctx, response.status);
  runtime.settle(ctx);
  return response;
}

/** Forwards the request; a failed exchange is recorded, then rethrown to the SDK as it was. */
async function send(
  runtime: GuardRuntime,
  ctx: RequestContext,
  forward: Forward,
  request: Request,
): Promise<Response> {
  try {
    const response = await forward(request);
    ctx.upstreamStatus = response.status;
    return response;
  } catch (cause) {
    const name = (cause as Error | null)?.name;
    const code =
      name === 'AbortError'
        ? 'client_closed'
        : name === 'TimeoutError'
          ? 'upstream_timeout'
          : 'upstream_unavailable';
    runtime.settle(ctx);
    await runtime.fail(ctx, new GuardError(code, { cause }));
    throw new Forwarding(cause);
  }
}

/**
 * An upstream error answer goes to the SDK unchanged, which raises its own error types as it
 * would without the guard. The audit event names it as the gateway would.
 */
async function relayFailure(
  runtime: GuardRuntime,
  ctx: RequestContext,
  response: Response,
): Promise<Response> {
  const status = response.status;
  ctx.errorCode =
    status === 401
      ? 'upstream_auth_failed'
      : status === 504
        ? 'upstream_timeout'
        : status >= 500 || status < 200
          ? 'upstream_error'
          : null;
  runtime.settle(ctx);
  await runtime.finish(ctx, status);
  return response;
}

function withBody(request: Request, body: string): Request {
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body,
    signal: request.signal,
  });
}

/** The answer's headers, minus those that described the body as the upstream encoded it. */
function answerHeaders(response: Response): Headers {
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  return headers;
}

/** The API path of a request URL, under a server URL that may carry a path of its own. */
function relativePath(pathname: string, base: string): string {
  if (base && pathname.startsWith(`${base}/`)) return pathname.slice(base.length);
  return pathname;
}
