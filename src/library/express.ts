import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GuardError, isGuardError } from '../errors.js';
import { isJsonContentType, parseJsonBody, readBody } from '../gateway/body.js';
import { acceptRequestId } from '../gateway/headers.js';
import { type GuardedMistral, runtimeOf } from './client.js';
import {
  type CheckResult,
  checkIncoming,
  type GuardedEndpoint,
  type GuardedRequest,
  type MiddlewareHooks,
  refusal,
} from './middleware.js';
import { GuardRuntime, type GuardRuntimeOptions } from './runtime.js';

/** The request as Express (or plain `node:http`) hands it over. */
export interface ExpressLikeRequest extends IncomingMessage {
  /** Set by a body parser such as `express.json()`; read from the stream when absent. */
  body?: unknown;
  /** Express's client address (honours `trust proxy`); the socket's when absent. */
  ip?: string;
  /** Express's URL before a router mounted on a prefix cut it. */
  originalUrl?: string;
  /** Set once the body passed; read it with `guardedRequestOf`. */
  mistralGuard?: GuardedRequest<unknown>;
}

export type NextFunction = (error?: unknown) => void;

/** Options of the Express middleware. */
export interface MistralGuardExpressOptions
  extends GuardRuntimeOptions,
    MiddlewareHooks<ExpressLikeRequest> {
  /** A guarded client to share (configuration, limits, audit) and bind to each request. */
  client?: GuardedMistral;
  /** What the route's body is a request for. Default `chat`. */
  endpoint?: GuardedEndpoint;
}

/** The middleware, with an error handler to mount after the app's routes. */
export interface MistralGuardExpress {
  (req: ExpressLikeRequest, res: ServerResponse, next: NextFunction): void;
  /** Answers anything a route throws: GuardErrors as they are, the rest as a generic 500. */
  errorHandler(
    error: unknown,
    req: ExpressLikeRequest,
    res: ServerResponse,
    next: NextFunction,
  ): void;
}

/**
 * An Express-compatible middleware (a plain `(req, res, next)` function, so any framework
 * built on `node:http` can use it) that guards one route's JSON body as the Fastify plugin does:
 * checked as the gateway checks a request, answered 400 with field details when refused,
 * audited, and left on `req.mistralGuard` with the request's audit context when it passes.
 * Needs `client` or `config`: loading a configuration is asynchronous, the middleware is not.
 *
 * @example
 * const guard = mistralGuardExpress({ client, userId: (req) => req.headers['x-user'] });
 * app.post('/api/chat', express.json(), guard, async (req, res, next) => { ... });
 * app.use(guard.errorHandler);
 */
export function mistralGuardExpress(options: MistralGuardExpressOptions): MistralGuardExpress {
  const runtime = options.client
    ? runtimeOf(options.client)
    : options.config
      ? new GuardRuntime(options.config, options)
      : undefined;
  if (!runtime) {
    throw new TypeError(
      'mistralGuardExpress needs `client` (made by createGuardedClient) or `config` (loadConfig)',
    );
  }
  const endpoint = options.endpoint ?? 'chat';
  const client = options.client ?? null;

  const middleware = (req: ExpressLikeRequest, res: ServerResponse, next: NextFunction): void => {
    const who = whoOf(req, options);
    const read = () => readJson(req, runtime.policy.maxBodyBytes);
    checkIncoming(runtime, endpoint, read, req, who, options, client).then(
      (result) => {
        if (!result.ok) return answer(res, result);
        req.mistralGuard = result.guarded;
        try {
          next();
        } catch (error) {
          // A framework that lets a handler's throw reach here must not turn it into an
          // unhandled rejection.
          runtime.logger.error({ err: error, requestId: who.requestId }, 'request failed');
          if (!res.headersSent) answer(res, refusal(error, who.requestId));
        }
      },
      (error: unknown) => {
        runtime.logger.error({ err: error, requestId: who.requestId }, 'request failed');
        answer(res, refusal(error, who.requestId));
      },
    );
  };

  const errorHandler: MistralGuardExpress['errorHandler'] = (error, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const requestId = req.mistralGuard?.context.requestId ?? randomUUID();
    if (!isGuardError(error)) {
      runtime.logger.error({ err: error, requestId }, 'request failed');
    }
    answer(res, refusal(error, requestId));
  };

  return Object.assign(middleware, { errorHandler });
}

/** The parsed body: a body parser's, or read here within the profile's limit. */
async function readJson(req: ExpressLikeRequest, limit: number): Promise<unknown> {
  if (req.body !== undefined) return req.body;
  if (!isJsonContentType(req.headers['content-type'])) {
    throw new GuardError('unsupported_media_type');
  }
  return parseJsonBody(await readBody(req, limit));
}

function whoOf(req: ExpressLikeRequest, hooks: MiddlewareHooks<ExpressLikeRequest>) {
  const ua = req.headers['user-agent'];
  return {
    requestId: acceptRequestId(req.headers['x-request-id']) ?? randomUUID(),
    method: req.method ?? 'POST',
    path: (req.originalUrl ?? req.url ?? '/').split('?', 1)[0] ?? '/',
    userId: hooks.userId?.(req) ?? null,
    clientIp: req.ip ?? req.socket.remoteAddress ?? null,
    userAgent: typeof ua === 'string' ? ua : null,
  };
}

function answer(res: ServerResponse, result: CheckResult & { ok: false }): void {
  const payload = JSON.stringify(result.body);
  res.statusCode = result.status;
  for (const [name, value] of Object.entries(result.headers)) res.setHeader(name, value);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(payload));
  res.end(payload);
}
