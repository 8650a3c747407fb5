import { isIP } from 'node:net';
import { z } from 'zod';

/** True for hosts that never leave the machine: plain HTTP to them exposes nothing. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

const upstreamUrl = z
  .string()
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: 'must be an absolute URL such as https://api.mistral.ai',
      });
      return;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      ctx.addIssue({ code: 'custom', message: 'must use https:// (expected https://host)' });
    } else if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
      ctx.addIssue({
        code: 'custom',
        message: 'plain http:// is refused for a non-loopback host (expected https://)',
      });
    }
    if (url.username || url.password) {
      ctx.addIssue({ code: 'custom', message: 'must not carry credentials (user:password@)' });
    }
    if (url.search || url.hash) {
      ctx.addIssue({ code: 'custom', message: 'must not have a query string or fragment' });
    }
  })
  .transform((value) => value.replace(/\/+$/, ''));

const positiveInt = z.coerce.number().int().positive();

const modelPattern = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9._:\-/*]+$/, 'expected a model id, optionally ending in * (e.g. mistral-*)');

const pathPrefix = z
  .string()
  .regex(/^\/v[12]\/[A-Za-z0-9._~\-/]*$/, 'expected an API path such as /v1/files');

const guardAction = z.enum(['block', 'redact', 'flag', 'allow']);
const detectorId = z.string().regex(/^[a-z0-9_]{1,64}$/, 'expected a detector id such as email');

/** Actions per category and per detector for one direction; a detector entry wins. */
const guardDirection = (categories: { secret: GuardAction; pii: GuardAction }) =>
  z
    .strictObject({
      categories: z
        .strictObject({
          secret: guardAction.default(categories.secret),
          pii: guardAction.default(categories.pii),
        })
        .prefault({}),
      detectors: z.record(detectorId, guardAction).default({}),
    })
    .prefault({});

type GuardAction = z.infer<typeof guardAction>;

/** The content guard of a profile: what it looks for and what it does on each side. */
export const guardSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Prompts: a credential is refused, personal data replaced before it leaves. */
    input: guardDirection({ secret: 'block', pii: 'redact' }),
    /** Answers, streamed or not: whatever the model says is redacted before the client sees it. */
    output: guardDirection({ secret: 'redact', pii: 'redact' }),
    /** When a detector fails: refuse the request (never fail open) or let it through unchecked. */
    onError: z.enum(['refuse', 'allow']).default('refuse'),
    /** Extra detectors that are off by default, such as `ip_address`. */
    enable: z.array(detectorId).default([]),
    disable: z.array(detectorId).default([]),
    customPatterns: z
      .array(
        z.strictObject({
          id: detectorId,
          pattern: z.string().min(1).max(500),
          category: z.enum(['secret', 'pii']).default('pii'),
          keywords: z.array(z.string().min(2).max(64)).optional(),
        }),
      )
      .default([]),
    customWords: z
      .array(
        z.strictObject({
          id: detectorId,
          words: z.array(z.string().min(1).max(200)).min(1),
          category: z.enum(['secret', 'pii']).default('pii'),
        }),
      )
      .default([]),
    /** Neutralise markdown links and images to other hosts, and raw HTML, in answers. */
    sanitize: z
      .strictObject({
        enabled: z.boolean().default(false),
        allowedLinkHosts: z.array(z.string().min(1).max(253)).default([]),
        stripHtml: z.boolean().default(true),
      })
      .prefault({}),
  })
  .prefault({});

export type GuardConfig = z.infer<typeof guardSchema>;

/**
 * What an environment allows. A virtual key's own policy can only narrow these values.
 */
export const profileSchema = z.strictObject({
  /** Allowed model ids; `*` allows any, a trailing `*` matches a prefix. */
  models: z.array(modelPattern).default(['*']),
  /** Highest `max_tokens` a request may ask for. */
  maxTokens: positiveInt.default(8192),
  /** `reject` answers 400; `clamp` lowers the request's `max_tokens` to the cap. */
  maxTokensAction: z.enum(['reject', 'clamp']).default('reject'),
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: positiveInt.default(1_048_576),
  /** Most messages one request may carry. */
  maxMessages: positiveInt.default(512),
  /** Most characters of text one message may carry. */
  maxMessageChars: positiveInt.default(200_000),
  /** Accept fields the API schema does not know (the real API refuses them). */
  allowUnknownFields: z.boolean().default(false),
  /** Paths forwarded without content inspection, matched by prefix, e.g. `/v1/files`. */
  passThrough: z.array(pathPrefix).default([]),
  guard: guardSchema,
});

export type Profile = z.infer<typeof profileSchema>;

const partialProfileSchema = profileSchema.partial();

/** The built-in profiles; the file may change them and add others. */
export const DEFAULT_PROFILES: Record<string, z.input<typeof partialProfileSchema>> = {
  development: {},
  staging: {},
  production: { maxTokens: 4096 },
};

const environmentName = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'expected a lower-case name such as production');

/** The whole configuration. Every field has a default, so an empty file is valid. */
export const configSchema = z
  .strictObject({
    /** The environment this gateway runs as; the default for new keys. */
    environment: environmentName.default('development'),
    /** Environments whose keys this gateway serves; defaults to `[environment]`. */
    environments: z.array(environmentName).optional(),
    dataDir: z.string().min(1).default('./.mistral-guard'),
    server: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.coerce.number().int().min(0).max(65535).default(8741),
      })
      .prefault({}),
    upstream: z
      .strictObject({
        baseUrl: upstreamUrl.default('https://api.mistral.ai'),
        connectTimeoutMs: positiveInt.default(10_000),
        firstByteTimeoutMs: positiveInt.default(120_000),
        idleTimeoutMs: positiveInt.default(60_000),
        totalTimeoutMs: positiveInt.default(600_000),
        connections: positiveInt.default(256),
      })
      .prefault({}),
    profiles: z.record(environmentName, partialProfileSchema).default({}),
    audit: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
    log: z
      .strictObject({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info'),
      })
      .prefault({}),
  })
  .transform((raw) => {
    const profiles: Record<string, Profile> = {};
    for (const name of new Set([...Object.keys(DEFAULT_PROFILES), ...Object.keys(raw.profiles)])) {
      profiles[name] = profileSchema.parse({ ...DEFAULT_PROFILES[name], ...raw.profiles[name] });
    }
    return { ...raw, environments: raw.environments ?? [raw.environment], profiles };
  })
  .superRefine((config, ctx) => {
    for (const env of new Set([config.environment, ...config.environments])) {
      if (!config.profiles[env]) {
        ctx.addIssue({
          code: 'custom',
          path: ['environments'],
          message: `environment "${env}" has no profile (expected one of ${Object.keys(config.profiles).join(', ')})`,
        });
      }
    }
  });

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
