import type { FastifyReply, FastifyRequest } from 'fastify';
import { GuardError } from '../errors.js';
import { modelAllowed } from '../policy/policy.js';
import { refuseSecretInName } from './caller-text.js';
import { forward, heldKeys } from './forward.js';
import { redactErrorMessage } from './guard.js';
import { upstreamHeaders } from './headers.js';
import { abortOnClientClose, readUpstreamJson } from './relay.js';
import type { HandlerDeps } from './server.js';

type Finish = (status: number, body: unknown, headers?: Record<string, string>) => Promise<unknown>;

interface ModelCard {
  id?: unknown;
  aliases?: unknown;
}

const MODEL_ID = /^[A-Za-z0-9._:-]{1,200}$/;

/**
 * GET /v1/models and /v1/models/{id}, answered from the upstream and filtered to the models
 * the key may use: a card passes when its id or one of its aliases is allowed.
 */
export async function handleModels(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: HandlerDeps,
  finish: Finish,
): Promise<unknown> {
  const ctx = request.ctx;
  const policy = ctx.policy!;
  const id = ctx.path.length > '/v1/models/'.length ? ctx.path.slice('/v1/models/'.length) : null;
  ctx.action = id ? 'models.retrieve' : 'models.list';
  const own = heldKeys(deps.upstreamKeys);
  if (id !== null) {
    if (!MODEL_ID.test(id)) throw new GuardError('not_found', { message: 'No such model.' });
    ctx.model = id;
    refuseSecretInName(id, 'model_id', own);
    if (!modelAllowed(policy, id)) throw new GuardError('model_not_allowed', { param: 'model_id' });
  }
  const abort = abortOnClientClose(reply);
  const res = await forward(deps.upstream, deps.upstreamKeys, ctx, (key) => ({
    method: 'GET',
    path: id ? `/v1/models/${encodeURIComponent(id)}` : '/v1/models',
    headers: upstreamHeaders(request.headers, key, ctx.requestId, undefined, own),
    abort,
  }));
  const answer = await readUpstreamJson(res, ctx, own);
  if (answer.status >= 400) {
    redactErrorMessage(deps.guards.get(ctx.environment!), answer.json);
  }
  if (answer.status !== 200 || id !== null)
    return finish(answer.status, answer.json, answer.headers);

  const list = answer.json as { data?: unknown };
  if (!Array.isArray(list?.data)) {
    throw new GuardError('upstream_error', { cause: new Error('model list without data') });
  }
  const allowed = list.data.filter((card: ModelCard | null) => {
    if (typeof card !== 'object' || card === null) return false;
    const names = [card.id, ...(Array.isArray(card.aliases) ? card.aliases : [])];
    return names.some((n) => typeof n === 'string' && modelAllowed(policy, n));
  });
  return finish(200, { ...list, data: allowed }, answer.headers);
}
