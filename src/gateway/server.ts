import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Config } from '../config/load.js';
import type { Profile } from '../config/schema.js';
import { isLoopbackHost } from '../config/schema.js';
import { type ErrorCode, GuardError, isGuardError, toErrorBody } from '../errors.js';
import type { Logger } from '../logging.js';
import { type EffectivePolicy, effectivePolicy } from '../policy/policy.js';
import { adminTokenMatches, registerAdmin } from './admin.js';
import { replaceOwnKeys, safeCallerText } from './caller-text.js';
import { newContext, type RequestContext } from './context.js';
import { heldKeys, staticUpstreamKeys, type UpstreamKeys } from './forward.js';
import type { ContentGuard } from './guard.js';
import { auditSummary, compileGuards } from './guard.js';
import { acceptRequestId } from './headers.js';
import { handleInspected, inspectedEndpoint } from './inspected.js';
import { createGatewayLimits, type GatewayLimits } from './limits.js';
import { GatewayMetrics } from './metrics.js';
import { handleModels } from './models.js';
import { handlePassThrough, passThroughAllowed } from './passthrough.js';
import { createTransport, rememberPeers, SECURITY_HEADERS, type Transport } from './transport.js';
import type { AuditRecorder, AuthenticatedKey, Authenticator, GatewayDeps } from './types.js';
import { Upstream } from './upstream.js';

export type { GatewayDeps } from './types.js';

/** A running or ready-to-run gateway. */
export interface Gateway {
  app: FastifyInstance;
  /** Starts listening; resolves with the base URL, e.g. `http://127.0.0.1:8741`. */
  listen(options?: { host?: string; port?: number }): Promise<string>;
  /** Stops accepting, finishes requests in flight, flushes the audit trail. */
  close(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    ctx: RequestContext;
  }
  interface FastifyInstance {
    /** The transport rules, so any handler can tell a request's client address. */
    transport: Transport;
  }
}

const MODELS_PATH = '/v1/models';

/**
 * Builds the gateway: authentication, policy, validation and forwarding, with one audit event
 * per request whatever its outcome.
 *
 * @example
 * const gateway = await createGateway({ config, logger, authenticator, audit });
 * const url = await gateway.listen({ port: 0 });
 */
export async function createGateway(deps: GatewayDeps): Promise<Gateway> {
  const { config } = deps;
  const upstream = deps.upstream ?? new Upstream(config.upstream);
  const guards = deps.guards ?? compileGuards(config.profiles);
  const limits = deps.limits ?? createGatewayLimits(config, deps.logger);
  const upstreamKeys = deps.upstreamKeys ?? staticUpstreamKeys(config.upstreamKeys);
  const metrics = new GatewayMetrics({
    upstreamKeys: () => upstreamKeys.status?.() ?? {},
    rotationDays: config.upstreamKey.rotationDays,
    breaker: () => upstream.breaker,
    limitsHealthy: () => limits.healthy(),
    ...(deps.auditHealthy ? { auditHealthy: deps.auditHealthy } : {}),
  });
  const transport = createTransport(config, deps.logger);
  const handlerDeps: HandlerDeps = { ...deps, upstream, guards, limits, upstreamKeys, metrics };
  const app = Fastify({
    ...(transport.https ? { https: transport.https } : {}),
    // Fastify would build a child logger for every request; the gateway logs outcomes itself,
    // once, with fixed fields, so the framework gets no logger.
    logger: false,
    // The audit trail is the record of every request; the log keeps refusals and failures.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: (req) => {
      const asked = req.headers['x-request-id'];
      return (asked && acceptRequestId(asked, heldKeys(upstreamKeys))) || randomUUID();
    },
    return503OnClosing: true,
    routerOptions: { caseSensitive: true, ignoreTrailingSlash: false, maxParamLength: 256 },
    bodyLimit: 1,
    // Slow or endless clients: the whole request must arrive in time, idle connections close
    // soon, and one connection cannot be kept forever.
    requestTimeout: config.server.requestTimeoutMs,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    maxRequestsPerSocket: config.server.maxRequestsPerSocket,
    http: {
      maxHeaderSize: config.server.maxHeaderBytes,
      // A request without Host is answered by the gateway (Mistral-shaped, audited), not by
      // Node's bare 400; nothing here routes by Host.
      requireHostHeader: false,
      // Node checks header and request deadlines on this interval (30 s by default), so a
      // short timeout needs a shorter one to take effect in time.
      connectionsCheckingInterval: Math.max(
        100,
        Math.min(1000, Math.floor(config.server.headersTimeoutMs / 2)),
      ),
    },
    clientErrorHandler: answerClientError,
    frameworkErrors: (error, request, reply) =>
      sendError(request, reply, new GuardError('bad_request', { cause: error }), handlerDeps),
  });
  app.server.headersTimeout = Math.min(
    config.server.headersTimeoutMs,
    config.server.requestTimeoutMs,
  );
  app.server.maxConnections = config.server.maxConnections;
  rememberPeers(app.server);
  // Every answer carries the security headers, also those the framework gives before any hook
  // runs (a malformed URL): they are set on the response before the framework sees the request.
  app.server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    for (const name in SECURITY_HEADERS) res.setHeader(name, SECURITY_HEADERS[name]!);
  });
  app.decorate('transport', transport);
  const stopWatching = transport.watch((options) =>
    (app.server as unknown as { setSecureContext(o: unknown): void }).setSecureContext(options),
  );
  app.addHook('onRequest', (request, reply, done) => {
    // HTTP/1.1 requires Host (RFC 9112, 3.2); its absence is answered here, in the API's shape.
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      const missing = new GuardError('bad_request', { message: 'The Host header is missing.' });
      void sendError(request, reply, missing, handlerDeps);
      return;
    }
    done();
  });

  // Bodies are read by the handlers themselves, with the limit of the caller's profile and only
  // after authentication: an anonymous client cannot make the gateway read a byte of its body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  // The context is made by the first code that needs it rather than in an onRequest hook: a hook
  // costs a turn of Fastify's hook runner on every request.
  app.decorateRequest('ctx', null as unknown as RequestContext);

  app.get('/healthz', async (_req, reply) => reply.send({ status: 'ok' }));
  // Operational figures, never content or keys; for loopback scrapers or the admin token.
  app.get('/metrics', async (request, reply) => {
    if (!metricsAllowed(request, deps.admin?.token)) {
      return sendError(request, reply, new GuardError('admin_forbidden'), handlerDeps);
    }
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.text());
  });
  app.get('/readyz', async (_req, reply) => {
    const checks = await readiness(deps, limits, upstream, upstreamKeys);
    const ok = Object.values(checks).every((c) => c.ok);
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks });
  });

  if (deps.admin) {
    registerAdmin(app, {
      ...deps.admin,
      audit: deps.audit,
      environments: config.environments,
      limits,
    });
  }

  const api = (request: FastifyRequest, reply: FastifyReply) =>
    handleApi(request, reply, handlerDeps);
  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/*', handler: api });
  app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/', handler: api });

  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new GuardError('not_found'), handlerDeps),
  );
  app.setErrorHandler((error, request, reply) => {
    if (reply.sent || reply.raw.headersSent) return;
    const mapped = mapFrameworkError(error);
    return sendError(request, reply, mapped, handlerDeps);
  });

  return {
    app,
    async listen(options = {}) {
      return app.listen({
        host: options.host ?? config.server.host,
        port: options.port ?? config.server.port,
      });
    },
    async close() {
      stopWatching();
      await app.close();
      await upstream.close();
      await limits.close();
    },
  };
}

export type HandlerDeps = GatewayDeps & {
  upstream: Upstream;
  guards: Map<string, ContentGuard>;
  limits: GatewayLimits;
  upstreamKeys: UpstreamKeys;
};

function contextOf(request: FastifyRequest): RequestContext {
  if (!request.ctx) {
    request.ctx = newContext(request, request.id, request.server.transport.clientIp(request.raw));
    const mark = { requestId: request.id, refusal: null };
    (request.raw.socket as MarkedSocket).mgRequest = mark;
    marks.set(request.raw, mark);
  }
  return request.ctx;
}

async function handleApi(request: FastifyRequest, reply: FastifyReply, deps: HandlerDeps) {
  const ctx = contextOf(request);
  const endpoint = inspectedEndpoint(ctx.method, ctx.path);
  const models =
    ctx.method === 'GET' && (ctx.path === MODELS_PATH || ctx.path.startsWith(`${MODELS_PATH}/`));
  // Named before authentication, so a refused request is audited under what it tried to do.
  if (endpoint) ctx.action = endpoint.action;
  else if (models) ctx.action = ctx.path === MODELS_PATH ? 'models.list' : 'models.retrieve';
  try {
    request.server.transport.checkScheme(request.raw);
    await deps.limits.authenticate(ctx.clientIp, () =>
      authenticate(request, ctx, deps.authenticator, deps.config),
    );
    // Whatever happens next, a reservation is settled once the answer is over or abandoned.
    reply.raw.once('close', () => {
      deps.limits.settle(ctx);
      (request.raw.socket as MarkedSocket).mgRequest = undefined;
    });
    if (endpoint) return await handleInspected(request, reply, endpoint, deps, finish);
    if (models) {
      await deps.limits.reserve(ctx, 0);
      return await handleModels(request, reply, deps, finish);
    }
    if (passThroughAllowed(ctx)) {
      await deps.limits.reserve(ctx, 0);
      return await handlePassThrough(request, reply, deps, finish);
    }
    throw new GuardError('endpoint_not_allowed');
  } catch (error) {
    return sendError(request, reply, error, deps);
  }

  /** Records the audit event, then sends the answer: no answer leaves without its event. */
  async function finish(status: number, body: unknown, headers: Record<string, string> = {}) {
    ctx.status = status;
    await record(ctx, deps);
    // Serialised here rather than by the framework, so the gateway's own keys are looked for in
    // what actually leaves, whatever escapes the upstream wrote them with. The answer is JSON
    // whatever the upstream labelled its own (an HTML error page, text/plain).
    let payload = JSON.stringify(body);
    const own = heldKeys(deps.upstreamKeys);
    if (own.some((key) => payload.includes(key))) payload = replaceOwnKeys(payload, own, true);
    return reply
      .code(status)
      .headers({
        ...headers,
        'content-type': 'application/json; charset=utf-8',
        ...ctx.limitHeaders,
        'x-request-id': ctx.requestId,
      })
      .send(payload);
  }
}

async function authenticate(
  request: FastifyRequest,
  ctx: RequestContext,
  authenticator: Authenticator,
  config: Config,
): Promise<void> {
  let key: AuthenticatedKey;
  try {
    key = await authenticator.authenticate(request.headers.authorization);
  } catch (error) {
    // A key that was found but may not be used is named in the trail: who kept trying it.
    const subject = isGuardError(error) ? error.subject : undefined;
    if (subject) {
      ctx.keyId = subject.id;
      ctx.keyName = subject.name;
      ctx.environment = subject.environment;
    }
    throw error;
  }
  ctx.keyId = key.id;
  ctx.keyName = key.name;
  ctx.environment = key.environment;
  if (!config.environments.includes(key.environment))
    throw new GuardError('environment_not_allowed');
  ctx.policy = policyFor(config.profiles[key.environment]!, key);
}

// The authenticator caches key records and freezes them, so the policy built from one holds
// until the record (or the profile) is replaced.
const policies = new WeakMap<object, { profile: Profile; policy: EffectivePolicy }>();

/** The effective policy of a key under a profile, built once per record. */
function policyFor(profile: Profile, key: AuthenticatedKey): EffectivePolicy {
  const known = policies.get(key);
  if (known?.profile === profile) return known.policy;
  const policy = Object.freeze(effectivePolicy(profile, key));
  policies.set(key, { profile, policy });
  return policy;
}

/** Writes the audit event of a request. Never throws: a failure is logged and rethrown as 500. */
export async function record(ctx: RequestContext, deps: GatewayDeps): Promise<void> {
  // One event per request: when sending an answer fails after its event was stored, the failure
  // is logged (sendError) but not recorded a second time.
  if (ctx.recorded) return;
  deps.metrics?.observe(ctx.action, ctx.status, (performance.now() - ctx.startedAt) / 1000);
  if (!deps.audit) {
    ctx.recorded = true;
    return;
  }
  try {
    // The gateway's own upstream keys, replaced wherever a caller's text carried one.
    const ownKeys = deps.upstreamKeys ? heldKeys(deps.upstreamKeys) : [];
    await deps.audit.record(toAuditEvent(ctx, deps.config.audit.clientIp, ownKeys));
    ctx.recorded = true;
  } catch (cause) {
    deps.logger.error({ err: cause, requestId: ctx.requestId }, 'audit write failed');
    throw new GuardError('internal_error', { cause });
  }
}

/** How much of a client address the audit trail keeps. */
export type IpRecording = 'full' | 'truncated' | 'none';

/** A client address as the trail keeps it: whole, cut to its network (/24, /48), or not at all. */
export function recordedIp(address: string, mode: IpRecording): string | null {
  if (mode === 'full') return address;
  if (mode === 'none') return null;
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(plain) === 4) return `${plain.split('.').slice(0, 3).join('.')}.0`;
  if (isIP(plain) === 6) {
    const groups = plain.split('::')[0]!.split(':').slice(0, 3);
    while (groups.length < 3) groups.push('0');
    return `${groups.join(':')}::`;
  }
  return null;
}

/**
 * The audit event of a request: an explicit list of fields, never a key or a body. `ownKeys`
 * are the gateway's upstream keys, replaced wherever a caller's text carried one.
 */
export function toAuditEvent(
  ctx: RequestContext,
  mode: IpRecording = 'full',
  ownKeys: readonly string[] = [],
): Parameters<AuditRecorder['record']>[0] {
  const safeText = (text: string) => safeCallerText(text, ownKeys);
  return {
    requestId: ctx.requestId,
    action: ctx.action,
    method: ctx.method,
    // A path is the caller's text too (a key pasted into a URL): scanned like the user agent.
    path: safeText(ctx.path),
    keyId: ctx.keyId,
    keyName: ctx.keyName,
    environment: ctx.environment,
    // The model is whatever the caller wrote: scanned like the path.
    model: ctx.model === null ? null : safeText(ctx.model),
    stream: ctx.stream,
    promptTokens: ctx.promptTokens,
    completionTokens: ctx.completionTokens,
    totalTokens: ctx.totalTokens,
    success: ctx.status >= 200 && ctx.status < 400,
    status: ctx.status,
    errorCode: ctx.errorCode,
    upstreamStatus: ctx.upstreamStatus,
    clientIp: recordedIp(ctx.clientIp, mode),
    // A user agent is the caller's free text: whatever sensitive it holds is replaced.
    userAgent: ctx.userAgent === null ? null : safeText(ctx.userAgent),
    latencyMs: Math.round((performance.now() - ctx.startedAt) * 100) / 100,
    guard: auditSummary(ctx.guard),
    ...(ctx.bodies ? { bodies: ctx.bodies } : {}),
  };
}

/** Logs, audits and answers a failure. Clients see the code, a safe message and the request id. */
export async function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  error: unknown,
  deps: GatewayDeps,
): Promise<unknown> {
  const ctx = contextOf(request);
  // When Node's HTTP layer cut the request (too slow, malformed body) and answered it itself,
  // the audit records what the client was told, not the disconnect that followed.
  const refusal = marks.get(request.raw)?.refusal;
  if (refusal && isGuardError(error, 'client_closed')) error = new GuardError(refusal);
  const { status, body } = toErrorBody(error, ctx.requestId);
  ctx.status = status;
  ctx.errorCode = body.code;
  logOutcome(deps.logger, ctx, error);
  try {
    await record(ctx, deps);
  } catch (auditError) {
    const fallback = toErrorBody(auditError, ctx.requestId);
    if (reply.sent || reply.raw.headersSent) return;
    return reply.code(fallback.status).send(fallback.body);
  }
  if (reply.sent || reply.raw.headersSent) {
    if (!reply.raw.writableEnded) reply.raw.end();
    return;
  }
  const headers = isGuardError(error) ? (error.headers ?? {}) : {};
  return reply
    .code(status)
    .headers({
      ...ctx.limitHeaders,
      ...headers,
      'x-request-id': ctx.requestId,
    })
    .send(body);
}

function logOutcome(logger: Logger, ctx: RequestContext, error: unknown): void {
  const fields = {
    requestId: ctx.requestId,
    status: ctx.status,
    code: ctx.errorCode,
    action: ctx.action,
    keyId: ctx.keyId,
  };
  if (ctx.status >= 500) {
    const cause = isGuardError(error) ? error.cause : error;
    logger.error({ ...fields, err: cause }, 'request failed');
  } else {
    logger.info(fields, 'request refused');
  }
}

/**
 * Answers a request Node's HTTP parser refused before the gateway saw it (malformed, headers too
 * large, too slow) with a Mistral-shaped error instead of the framework's own body. Nothing is
 * audited: no request was read, so there is no key, action or path to record.
 */
/** The request a socket is serving, and how Node's HTTP layer refused it, if it did. */
interface SocketMark {
  requestId: string;
  refusal: ErrorCode | null;
}

/** A socket, marked with the request it is serving. */
type MarkedSocket = Duplex & { mgRequest?: SocketMark | undefined };

// The same marks by request, for when the socket is already gone from the request.
const marks = new WeakMap<object, SocketMark>();

// The headers every answer carries, as header lines for answers written straight to a socket.
const RAW_SECURITY_HEADERS = Object.entries(SECURITY_HEADERS)
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join('');

function answerClientError(error: Error & { code?: string }, socket: MarkedSocket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const code =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 'headers_too_large'
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'request_timeout'
        : 'bad_request';
  const inFlight = socket.mgRequest;
  if (inFlight) inFlight.refusal = code;
  const { status, body } = toErrorBody(new GuardError(code), inFlight?.requestId ?? randomUUID());
  const payload = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `${RAW_SECURITY_HEADERS}Content-Length: ${Buffer.byteLength(payload)}\r\n` +
      `Connection: close\r\n\r\n${payload}`,
  );
}

/** `/metrics` answers loopback scrapers, and others showing the admin token. */
function metricsAllowed(request: FastifyRequest, adminToken: string | undefined): boolean {
  // The client as the transport sees it: behind a trusted proxy, the forwarded address.
  const peer = request.server.transport.clientIp(request.raw);
  if (isLoopbackHost(peer.startsWith('::ffff:') ? peer.slice(7) : peer)) return true;
  return adminToken !== undefined && adminTokenMatches(request.headers.authorization, adminToken);
}

function mapFrameworkError(error: unknown): GuardError {
  if (isGuardError(error)) return error;
  const code = (error as { code?: string })?.code;
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new GuardError('unsupported_media_type');
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new GuardError('body_too_large');
  return new GuardError('internal_error', { cause: error });
}

async function readiness(
  deps: GatewayDeps,
  limits: GatewayLimits,
  upstream: Upstream,
  keys: UpstreamKeys,
) {
  const checks: Record<string, { ok: boolean; detail?: string }> = {};
  try {
    await deps.authenticator.ping();
    checks.store = { ok: true };
  } catch {
    checks.store = { ok: false, detail: 'the key store cannot be read' };
  }
  if (deps.auditHealthy) {
    checks.audit = deps.auditHealthy()
      ? { ok: true }
      : { ok: false, detail: 'the audit trail cannot keep up: its spool is full' };
  }
  const breaker = upstream.breaker;
  checks.upstream =
    breaker === 'open'
      ? {
          ok: false,
          detail: 'the upstream failed repeatedly; calls fail fast until a probe passes',
        }
      : { ok: true, detail: `circuit ${breaker}` };
  checks.limits = limits.healthy()
    ? { ok: true, detail: limits.backend }
    : { ok: false, detail: `the ${limits.backend} limit store is unreachable` };
  const status = keys.status?.() ?? {};
  const failing = deps.config.environments.filter(
    (env) => status[env]?.ok === false || !status[env],
  );
  // Per environment: the live check's result, and the last failure (a refresh that failed while
  // the last good key serves on shows here too). Never the key, only what happened to it.
  const detail = deps.config.environments
    .map((env) => {
      const st = status[env];
      if (!st) return `${env}: no key`;
      const parts = [st.verified ? `verified ${st.verified.result}` : 'not verified'];
      if (st.lastError) parts.push(`last error ${st.lastError.code}`);
      if (st.warnings?.length) parts.push(...st.warnings);
      return `${env}: ${parts.join(', ')}`;
    })
    .join('; ');
  checks.upstreamKey = { ok: failing.length === 0, detail };
  return checks;
}
