import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import type { AuditEventInput } from '../audit/event.js';
import { ConfigError } from '../config/errors.js';
import type { Config } from '../config/load.js';
import { checkRequest, reservedTokens } from '../core/request.js';
import { GuardError, isGuardError, toErrorBody } from '../errors.js';
import { refuseSecretInTarget } from '../gateway/caller-text.js';
import type { RequestContext } from '../gateway/context.js';
import {
  type ContentGuard,
  compileGuards,
  type GuardOutcome,
  inspectRequest,
  newOutcome,
  StreamGuard,
} from '../gateway/guard.js';
import { createGatewayLimits, type GatewayLimits } from '../gateway/limits.js';
import { toAuditEvent } from '../gateway/server.js';
import type { Logger } from '../logging.js';
import type { EndpointSpec } from '../mistral/endpoints.js';
import type { EffectivePolicy } from '../policy/policy.js';
import { toEffective } from './policy.js';

/**
 * Who a call is made for, recorded on its audit event. Every field is optional; without a
 * request id each call gets a fresh one.
 */
export interface AuditContext {
  /** The application's own user id; limits count per user when it is set. */
  userId?: string | null;
  /** The end user's address, as the application's framework reports it. */
  clientIp?: string | null;
  /** The id of the application request that led to the call, so both can be joined up. */
  requestId?: string | null;
  userAgent?: string | null;
}

/** Where audit events go: any sink of the audit module fits (`openAuditLog`, `createAuditLog`). */
export interface AuditRecorderLike {
  record(event: AuditEventInput): Promise<void>;
}

/** What the library is built from; every field is optional. */
export interface GuardRuntimeOptions {
  /** A loaded configuration (`await loadConfig()`); read from the usual sources when absent. */
  config?: Config;
  /** The profile that applies; default `config.environment`. */
  environment?: string;
  /**
   * Where one audit event per call goes, refused or not. Absent: no audit trail. Pass
   * `await openAuditLog(config.dataDir)` to share the trail `mistral-guard audit tail` reads.
   */
  audit?: AuditRecorderLike | null;
  /** A pino logger for refusals and failures (never prompts or keys). Default: silent. */
  logger?: Logger;
}

/** The limits subject of calls made without a user id. */
const APP_SUBJECT = 'app';

/**
 * The gateway's request pipeline for one environment, run in-process: the same checks, content
 * guard, limits and audit events, built from the same configuration. The guarded client and the
 * web middleware both drive one of these.
 */
export class GuardRuntime {
  readonly config: Config;
  readonly environment: string;
  readonly policy: EffectivePolicy;
  readonly guard: ContentGuard | null;
  readonly logger: Logger;
  readonly #limits: GatewayLimits;
  readonly #audit: AuditRecorderLike | null;

  constructor(config: Config, options: Omit<GuardRuntimeOptions, 'config'> = {}) {
    const environment = options.environment ?? config.environment;
    const profile = config.profiles[environment];
    if (!profile) {
      throw new ConfigError([
        {
          path: 'environment',
          message: `environment "${environment}" has no profile (expected one of ${Object.keys(config.profiles).join(', ')})`,
        },
      ]);
    }
    this.config = config;
    this.environment = environment;
    this.policy = toEffective(profile);
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.guard = compileGuards({ [environment]: profile }).get(environment) ?? null;
    // The limits engine serves the environments a configuration lists; this one is served here.
    this.#limits = createGatewayLimits({ ...config, environments: [environment] }, this.logger);
    this.#audit = options.audit ?? null;
  }

  /** Starts the record of one call; it becomes the call's audit event. */
  newContext(action: string, method: string, path: string, who: AuditContext): RequestContext {
    return {
      requestId: who.requestId || randomUUID(),
      startedAt: performance.now(),
      method,
      path,
      clientIp: who.clientIp ?? '',
      userAgent: who.userAgent ?? null,
      action,
      // Calls carry no virtual key: limits and audit count them per application user.
      keyId: who.userId ? `user:${who.userId}` : APP_SUBJECT,
      keyName: null,
      environment: this.environment,
      policy: this.policy,
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
      // Bodies are kept by the gateway's opt-in only; calls made in-process record none.
      bodies: null,
      recorded: false,
    };
  }

  /**
   * Checks a request body and runs the content guard over it, in the gateway's order; values
   * the policy redacts are replaced in place. `carried` is what an earlier inspection of the same
   * content found (the middleware's), so the call's audit event still counts it.
   */
  inspect(
    ctx: RequestContext,
    endpoint: EndpointSpec,
    body: unknown,
    carried?: GuardOutcome | null,
  ): void {
    ctx.action = endpoint.action;
    checkRequest(endpoint, body, this.policy, ctx);
    // As in the gateway: a model or agent id holding what looks like a secret is refused.
    refuseSecretInTarget(body, []);
    if (!this.guard) return;
    ctx.guard = carried ? { ...carried } : newOutcome();
    inspectRequest(this.guard, endpoint, body, ctx.guard, this.logger);
  }

  /** `inspect`, then holds the call's request slot and tokens, or throws its 429. */
  async admit(
    ctx: RequestContext,
    endpoint: EndpointSpec,
    body: unknown,
    carried?: GuardOutcome | null,
  ): Promise<void> {
    this.inspect(ctx, endpoint, body, carried);
    await this.#limits.reserve(ctx, reservedTokens(endpoint, body as Record<string, unknown>));
  }

  /** Holds a request slot for a call that carries no content to count (models, pass-through). */
  async reserve(ctx: RequestContext): Promise<void> {
    await this.#limits.reserve(ctx, 0);
  }

  /** The streaming guard of a call, or null when answers need no inspection. */
  streamGuard(ctx: RequestContext): StreamGuard | null {
    if (!this.guard?.inspectsOutput || !ctx.guard) return null;
    return new StreamGuard(this.guard, ctx.guard, this.logger);
  }

  /** Gives back what a call held beyond what it used; safe to call more than once. */
  settle(ctx: RequestContext): void {
    this.#limits.settle(ctx);
  }

  /** Records a call that was answered. Throws `internal_error` when its event cannot be kept. */
  async finish(ctx: RequestContext, status: number): Promise<void> {
    ctx.status = status;
    await this.#record(ctx);
  }

  /**
   * Records a refused or failed call: logged (4xx at info, 5xx at error with the cause) and
   * audited. Returns the error the caller should see: the GuardError itself, or a generic
   * `internal_error` for anything else.
   */
  async fail(ctx: RequestContext, error: unknown): Promise<GuardError> {
    const failure = isGuardError(error)
      ? error
      : new GuardError('internal_error', { cause: error });
    const { status, body } = toErrorBody(failure, ctx.requestId);
    ctx.status = status;
    ctx.errorCode = body.code;
    const fields = {
      requestId: ctx.requestId,
      status,
      code: body.code,
      action: ctx.action,
      keyId: ctx.keyId,
    };
    if (status >= 500) this.logger.error({ ...fields, err: failure.cause }, 'request failed');
    else this.logger.info(fields, 'request refused');
    // An audit failure is logged by #record; the caller still learns why the call failed.
    await this.#record(ctx).catch(() => {});
    return failure;
  }

  /** Releases the limit store's connections; the audit sink belongs to the caller. */
  async close(): Promise<void> {
    await this.#limits.close();
  }

  async #record(ctx: RequestContext): Promise<void> {
    if (!this.#audit) return;
    try {
      await this.#audit.record({ ...toAuditEvent(ctx), clientIp: ctx.clientIp || null });
    } catch (cause) {
      this.logger.error({ err: cause, requestId: ctx.requestId }, 'audit write failed');
      throw new GuardError('internal_error', { cause });
    }
  }
}
