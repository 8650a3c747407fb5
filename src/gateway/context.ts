import type { FastifyRequest } from 'fastify';
import type { AuditBodies } from '../audit/event.js';
import type { Limiter, Reservation } from '../limits/index.js';
import type { EffectivePolicy } from '../policy/policy.js';
import type { GuardOutcome } from './guard.js';

/** What the gateway learns about one request as it moves through the stages. */
export interface RequestContext {
  requestId: string;
  startedAt: number;
  method: string;
  path: string;
  clientIp: string;
  userAgent: string | null;
  action: string;
  keyId: string | null;
  keyName: string | null;
  environment: string | null;
  policy: EffectivePolicy | null;
  model: string | null;
  stream: boolean;
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
  status: number;
  errorCode: string | null;
  upstreamStatus: number | null;
  /** What the content guard found and did; null when it did not run. */
  guard: GuardOutcome | null;
  /** The `x-ratelimit-*` headers of the key's limits, once they were checked. */
  limitHeaders: Record<string, string> | null;
  /** The limits reservation to settle when the answer is over. */
  reservation: { limiter: Limiter; reservation: Reservation } | null;
  /** The redacted bodies the audit event keeps, when the operator opted in. */
  bodies: AuditBodies | null;
  /** Set once the audit event is stored: a failure after that adds no second event. */
  recorded: boolean;
}

/** The longest path a context keeps (and the audit trail records); longer ones are cut. */
export const MAX_PATH = 512;

/** Starts the context of a request as it arrives. */
export function newContext(
  request: FastifyRequest,
  requestId: string,
  clientIp: string,
): RequestContext {
  const ua = request.headers['user-agent'];
  const path = request.url.split('?', 1)[0] ?? '/';
  return {
    requestId,
    startedAt: performance.now(),
    method: request.method,
    path: path.length > MAX_PATH ? path.slice(0, MAX_PATH) : path,
    clientIp,
    userAgent: typeof ua === 'string' ? ua : null,
    action: 'unknown',
    keyId: null,
    keyName: null,
    environment: null,
    policy: null,
    model: null,
    stream: false,
    promptTokens: null,
    completionTokens: null,
    totalTokens: null,
    status: 0,
    errorCode: null,
    upstreamStatus: null,
    guard: null,
    limitHeaders: null,
    reservation: null,
    bodies: null,
    recorded: false,
  };
}

/** Copies token usage from an upstream `usage` object, read leniently. */
export function applyUsage(ctx: RequestContext, usage: unknown): void {
  if (typeof usage !== 'object' || usage === null) return;
  const u = usage as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  ctx.promptTokens = num(u.prompt_tokens) ?? ctx.promptTokens;
  ctx.completionTokens = num(u.completion_tokens) ?? ctx.completionTokens;
  ctx.totalTokens =
    num(u.total_tokens) ??
    (ctx.promptTokens !== null ? ctx.promptTokens + (ctx.completionTokens ?? 0) : null);
}
