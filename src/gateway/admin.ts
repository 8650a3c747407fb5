import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { GuardError, isGuardError, toErrorBody } from '../errors.js';
import { DEFAULT_GRACE_MS, MAX_GRACE_MS, rotateVirtualKey } from '../keys/rotate.js';
import type { KeyStore, VirtualKeyRecord } from '../keys/types.js';
import { formatIssues } from '../mistral/issues.js';
import type { GatewayLimits } from './limits.js';
import { addressMatcher } from './transport.js';
import type { AuditRecorder } from './types.js';

/** What the admin API needs from the gateway. */
export interface AdminDeps {
  /** The admin token; the admin API does not exist without one. */
  token: string;
  /** Addresses or CIDRs allowed to call it; empty means any client that reaches it. */
  allowFrom: string[];
  keys: KeyStore;
  environments: string[];
  audit: AuditRecorder | null;
  /** Re-reads the upstream keys from their sources; absent when nothing can be reloaded. */
  reload?: () => Promise<Record<string, unknown>>;
  /** Counts failed admin authentications per address, with the API keys' limit. */
  limits: Pick<GatewayLimits, 'authenticate'>;
  /** Switches an environment to a new upstream key; absent when rotation is not available. */
  rotate?: (environment: string, newKey: string) => Promise<Record<string, unknown>>;
}

/** Where the admin API lives. */
export const ADMIN_PREFIX = '/admin';

const limit = z.number().int().positive().nullable().optional();
const limits = z
  .strictObject({
    rpm: limit,
    tpm: limit,
    concurrency: limit,
    dailyTokens: limit,
    monthlyTokens: limit,
  })
  .nullable()
  .optional();
const models = z
  .array(z.string().regex(/^[A-Za-z0-9._:\-/]+\*?$|^\*$/, 'expected a model id or a pattern'))
  .min(1)
  .nullable()
  .optional();

const createBody = z.strictObject({
  name: z.string().min(1).max(128),
  environment: z.string().min(1).max(32),
  models,
  maxTokens: z.number().int().positive().nullable().optional(),
  expiresAt: z.iso.datetime().nullable().optional(),
  limits,
  metadata: z.record(z.string().max(64), z.string().max(256)).optional(),
});

const updateBody = createBody.omit({ environment: true }).partial();
const rotateBody = z.strictObject({ environment: z.string().min(1), key: z.string().min(1) });
const rotateKeyBody = z.strictObject({
  graceSeconds: z
    .number()
    .int()
    .min(0)
    .max(MAX_GRACE_MS / 1000)
    .optional(),
});

/** A key as the admin API shows it: everything but its hash. */
function view(record: VirtualKeyRecord): Omit<VirtualKeyRecord, 'hash'> {
  const { hash: _hash, ...rest } = record;
  return rest;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * True when an Authorization header carries the admin token. Compared as digests in constant
 * time, so neither the content nor the length of the token leaks through timing.
 */
export function adminTokenMatches(authorization: string | undefined, token: string): boolean {
  const given =
    typeof authorization === 'string' && authorization.startsWith('Bearer ')
      ? authorization.slice(7)
      : '';
  return timingSafeEqual(digest(given), digest(token));
}

/**
 * Registers the admin API under `/admin`: key management, upstream key reload and rotation.
 * Every call needs `Authorization: Bearer <MISTRAL_GUARD_ADMIN_TOKEN>` (compared in constant
 * time, as digests so the length leaks nothing either) and, when configured, a client address
 * in `allowFrom`. Every call, refused ones included, is audited as `admin.*`.
 *
 * @example
 * registerAdmin(app, { token, allowFrom: ['10.0.0.0/8'], keys, environments, audit });
 */
export function registerAdmin(app: FastifyInstance, deps: AdminDeps): void {
  const allowed = addressMatcher(deps.allowFrom);

  const authorise = async (request: FastifyRequest): Promise<void> => {
    const peer = request.server.transport.clientIp(request.raw);
    await deps.limits.authenticate(peer, () => {
      if (deps.allowFrom.length > 0 && !allowed(peer)) throw new GuardError('admin_forbidden');
      if (!adminTokenMatches(request.headers.authorization, deps.token)) {
        throw new GuardError('admin_unauthorized');
      }
    });
  };

  /** Runs an admin action: authorisation, the action, its audit event, a JSON answer. */
  const route =
    (
      action: string,
      run: (request: FastifyRequest) => Promise<{
        status?: number;
        body: unknown;
        keyId?: string;
        environment?: string;
        keyName?: string;
      }>,
    ) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const started = performance.now();
      let status = 200;
      let errorCode: string | null = null;
      let keyId: string | null = null;
      let environment: string | null = null;
      let keyName: string | null = null;
      let body: unknown;
      try {
        await authorise(request);
        const result = await run(request);
        status = result.status ?? 200;
        keyId = result.keyId ?? null;
        environment = result.environment ?? null;
        keyName = result.keyName ?? null;
        body = result.body;
      } catch (error) {
        const mapped = toErrorBody(error, request.id);
        status = mapped.status;
        errorCode = mapped.body.code;
        body = mapped.body;
      }
      await deps.audit?.record({
        requestId: request.id,
        action: `admin.${action}`,
        method: request.method,
        path: request.url,
        keyId,
        keyName,
        environment,
        status,
        success: status < 400,
        errorCode,
        clientIp: request.server.transport.clientIp(request.raw),
        userAgent: null,
        latencyMs: performance.now() - started,
      } as Parameters<AuditRecorder['record']>[0]);
      return reply.code(status).header('x-request-id', request.id).send(body);
    };

  const parse = <T>(schema: z.ZodType<T>, value: unknown): T => {
    const result = schema.safeParse(value ?? {});
    if (result.success) return result.data;
    const issues = formatIssues(result.error);
    throw new GuardError('invalid_request', {
      message: `The request body is not valid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      param: issues[0]?.path ?? null,
      issues,
    });
  };

  const found = (record: VirtualKeyRecord | null): VirtualKeyRecord => {
    if (!record) throw new GuardError('not_found', { message: 'No such key.' });
    return record;
  };

  app.register(
    async (admin) => {
      // The admin API parses its own JSON bodies, small ones only.
      admin.addContentTypeParser(
        'application/json',
        { parseAs: 'string', bodyLimit: 65_536 },
        (_request, text, done) => {
          try {
            done(null, text === '' ? {} : JSON.parse(text as string));
          } catch {
            done(new GuardError('invalid_json'), undefined);
          }
        },
      );
      admin.setErrorHandler((error, request, reply) => {
        const mapped = toErrorBody(
          isGuardError(error) ? error : new GuardError('bad_request'),
          request.id,
        );
        return reply.code(mapped.status).send(mapped.body);
      });

      admin.get(
        '/keys',
        route('key.list', async (request) => {
          const all = (request.query as { all?: string }).all === 'true';
          const records = await deps.keys.list({ includeRevoked: all });
          return { body: { object: 'list', data: records.map(view) } };
        }),
      );
      admin.post(
        '/keys',
        route('key.create', async (request) => {
          const input = parse(createBody, request.body);
          if (!deps.environments.includes(input.environment)) {
            throw new GuardError('invalid_request', {
              message: `environment must be one of ${deps.environments.join(', ')}.`,
              param: 'environment',
            });
          }
          const { record, key } = await deps.keys.create({
            name: input.name,
            environment: input.environment,
            models: input.models ?? null,
            maxTokens: input.maxTokens ?? null,
            expiresAt: input.expiresAt ?? null,
            limits: input.limits ?? null,
            ...(input.metadata ? { metadata: input.metadata } : {}),
          });
          return { status: 201, keyId: record.id, body: { ...view(record), key } };
        }),
      );
      admin.get(
        '/keys/:id',
        route('key.show', async (request) => {
          const { id } = request.params as { id: string };
          const record = found(await deps.keys.get(id));
          return { keyId: record.id, body: view(record) };
        }),
      );
      admin.patch(
        '/keys/:id',
        route('key.update', async (request) => {
          const { id } = request.params as { id: string };
          const patch = parse(updateBody, request.body);
          const record = found(
            await deps.keys.update(
              id,
              Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)),
            ),
          );
          return { keyId: record.id, body: view(record) };
        }),
      );
      admin.post(
        '/keys/:id/revoke',
        route('key.revoke', async (request) => {
          const { id } = request.params as { id: string };
          const record = found(await deps.keys.revoke(id));
          return { keyId: record.id, body: view(record) };
        }),
      );
      admin.post(
        '/keys/:id/rotate',
        route('key.rotate', async (request) => {
          const { id } = request.params as { id: string };
          const { graceSeconds } = parse(rotateKeyBody, request.body);
          const graceMs = graceSeconds === undefined ? DEFAULT_GRACE_MS : graceSeconds * 1000;
          const { previous, record, key } = await rotateVirtualKey(deps.keys, id, { graceMs });
          return {
            status: 201,
            keyId: previous.id,
            body: { ...view(record), key, previous: view(previous) },
          };
        }),
      );
      admin.post(
        '/upstream/reload',
        route('upstream.reload', async () => {
          if (!deps.reload) throw new GuardError('not_found', { message: 'Nothing to reload.' });
          return { body: await deps.reload() };
        }),
      );
      // Anything else under /admin is the admin API's own 404, never the proxy's routes.
      admin.all(
        '/*',
        route('unknown', async () => {
          throw new GuardError('not_found');
        }),
      );
      admin.post(
        '/upstream/rotate',
        route('upstream.rotate', async (request) => {
          if (!deps.rotate)
            throw new GuardError('not_found', { message: 'Rotation is not available.' });
          const input = parse(rotateBody, request.body);
          const result = await deps.rotate(input.environment, input.key);
          const before =
            typeof result.previousFingerprint === 'string' ? result.previousFingerprint : 'none';
          return {
            body: result,
            environment: input.environment,
            keyName: `fingerprint ${before} -> ${String(result.fingerprint ?? 'unknown')}`,
          };
        }),
      );
    },
    { prefix: ADMIN_PREFIX },
  );
}
