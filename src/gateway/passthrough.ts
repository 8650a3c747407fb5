import type { FastifyReply, FastifyRequest } from 'fastify';
import { GuardError } from '../errors.js';
import type { RequestContext } from './context.js';
import { relayedHeaders, upstreamHeaders } from './headers.js';
import { record } from './server.js';
import type { GatewayDeps } from './types.js';
import type { Upstream } from './upstream.js';

type Finish = (status: number, body: unknown, headers?: Record<string, string>) => Promise<unknown>;

// Path segments that could walk out of the allowed prefix once a server normalises them.
const UNSAFE_PATH = /(^|\/)\.\.?(\/|$)|%2e|%2f|%5c|\\|\/\//i;

/** True when the caller's profile lists this path as a pass-through prefix. */
export function passThroughAllowed(ctx: RequestContext): boolean {
  const prefixes = ctx.policy?.passThrough ?? [];
  if (!prefixes.length || UNSAFE_PATH.test(ctx.path)) return false;
  return prefixes.some((p) => ctx.path === p || ctx.path.startsWith(p.endsWith('/') ? p : `${p}/`));
}

/**
 * Forwards a request the profile lets through without content inspection: authenticated and
 * audited, body and answer streamed, the real key swapped in and headers filtered both ways.
 */
export async function handlePassThrough(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: GatewayDeps & { upstream: Upstream },
  _finish: Finish,
): Promise<unknown> {
  const ctx = request.ctx;
  ctx.action = 'passthrough';
  const upstreamKey = deps.config.upstreamKeys[ctx.environment!];
  if (!upstreamKey) throw new GuardError('upstream_auth_failed');
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > ctx.policy!.maxBodyBytes) {
    throw new GuardError('body_too_large', { headers: { connection: 'close' } });
  }
  const hasBody = ctx.method !== 'GET' && ctx.method !== 'DELETE';
  const contentType = request.headers['content-type'];
  const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
  const abort = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  const res = await deps.upstream.request({
    method: ctx.method,
    path: ctx.path + query,
    headers: upstreamHeaders(request.headers, upstreamKey.reveal(), ctx.requestId, contentType),
    body: hasBody ? request.raw : null,
    abort,
  });
  ctx.upstreamStatus = res.statusCode;
  if (res.statusCode >= 500) {
    res.body.resume();
    throw new GuardError(res.statusCode === 504 ? 'upstream_timeout' : 'upstream_error');
  }
  if (res.statusCode === 401) {
    res.body.resume();
    throw new GuardError('upstream_auth_failed');
  }
  ctx.status = res.statusCode;
  await record(ctx, deps);
  return reply
    .code(res.statusCode)
    .headers({ ...relayedHeaders(res.headers), 'x-request-id': ctx.requestId })
    .send(res.body);
}
