import type { FastifyReply, FastifyRequest } from 'fastify';
import { checkRequest, reservedTokens } from '../core/request.js';
import { GuardError } from '../errors.js';
import { ENDPOINTS, type EndpointSpec } from '../mistral/endpoints.js';
import { BodyRecorder } from './bodies.js';
import { isJsonContentType, parseJsonBody, readBody, refuseEncodedBody } from './body.js';
import { refuseSecretInTarget } from './caller-text.js';
import { forward, heldKeys } from './forward.js';
import {
  guardForKey,
  inspectAnswer,
  inspectRequest,
  newOutcome,
  redactErrorMessage,
  StreamGuard,
} from './guard.js';
import { upstreamHeaders } from './headers.js';
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
  refuseEncodedBody(request.headers);
  const body = parseJsonBody(await readBody(request.raw, policy.maxBodyBytes));
  checkRequest(endpoint, body, policy, ctx);
  const own = heldKeys(deps.upstreamKeys);
  refuseSecretInTarget(body, own);
  const payload = body;
  const profileGuard = deps.guards.get(ctx.environment!);
  const guard = profileGuard && guardForKey(profileGuard, policy.keyGuard);
  // Bodies are kept only for requests the guard inspects, taken before it may refuse one, so a
  // blocked request is on record too (redacted like any other).
  const bodies =
    guard && deps.config.audit.bodies.store
      ? new BodyRecorder(deps.config.audit.bodies.maxBytes, guard.scanner, own)
      : null;
  if (bodies) {
    bodies.request(payload);
    ctx.bodies = bodies.partial();
  }
  if (guard) {
    ctx.guard = newOutcome();
    inspectRequest(guard, endpoint, payload, ctx.guard, deps.logger);
  }
  await deps.limits.reserve(ctx, reservedTokens(endpoint, payload));

  const abort = abortOnClientClose(reply);
  const res = await forward(deps.upstream, deps.upstreamKeys, ctx, (key) => ({
    method: 'POST',
    path: endpoint.path,
    headers: upstreamHeaders(request.headers, key, ctx.requestId, 'application/json', own),
    body: JSON.stringify(payload),
    abort,
  }));

  if (ctx.stream && res.statusCode === 200 && isEventStream(res)) {
    reply.hijack();
    const streamGuard =
      guard?.inspectsOutput && ctx.guard ? new StreamGuard(guard, ctx.guard, deps.logger) : null;
    try {
      await relayEventStream(
        res,
        reply.raw,
        ctx,
        {
          transform:
            streamGuard || bodies
              ? (data) => {
                  const sent = streamGuard ? streamGuard.event(data) : data;
                  bodies?.event(sent);
                  return sent;
                }
              : undefined,
          flush: streamGuard
            ? () => {
                const held = streamGuard.finish();
                for (const data of held) bodies?.event(data);
                return held;
              }
            : undefined,
          redactError: (error) => redactErrorMessage(guard, error),
          beforeDone: async () => {
            ctx.status = 200;
            if (bodies) ctx.bodies = bodies.streamed();
            await record(ctx, deps);
          },
        },
        own,
      );
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
  const answer = await readUpstreamJson(res, ctx, own);
  if (guard?.inspectsOutput && ctx.guard && answer.status < 300) {
    inspectAnswer(guard, answer.json, ctx.guard, deps.logger);
  }
  if (answer.status >= 400) redactErrorMessage(guard, answer.json);
  if (bodies) ctx.bodies = bodies.response(answer.json);
  return finish(answer.status, answer.json, answer.headers);
}
