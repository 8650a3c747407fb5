import { isIP } from 'node:net';
import { z } from 'zod';
import { Secret } from './secret.js';

/**
 * True for hosts that never leave the machine: plain HTTP to them exposes nothing. Only
 * `localhost` itself, 127.0.0.0/8 and ::1 qualify; a name under `.localhost` is looked up like
 * any other name, and a resolver may send it anywhere.
 *
 * @example
 * isLoopbackHost('[::1]'); // true
 * isLoopbackHost('api.localhost'); // false
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
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

/** One limit: a positive integer, or null for no limit. */
const limitValue = z.number().int().positive().nullable();
const outagePolicy = z.enum(['refuse', 'allow']);

/**
 * The limits every virtual key of an environment is held to. A key may set lower ones of its
 * own, never higher. Field names match the limits engine and the `keys` flags; null means none.
 */
export const profileLimitsSchema = z
  .strictObject({
    /** Requests per minute (sliding window). */
    rpm: limitValue.default(600),
    /** Prompt and completion tokens per minute (sliding window). */
    tpm: limitValue.default(2_000_000),
    /** Requests in flight at once; a stream holds its slot until it ends. */
    concurrency: limitValue.default(32),
    /** Tokens per UTC day. */
    dailyTokens: limitValue.default(null),
    /** Tokens per UTC month. */
    monthlyTokens: limitValue.default(null),
    /**
     * While the shared limit store (Redis) is unreachable: `refuse` turns requests away,
     * `allow` lets them through uncounted. Refusing is the default so that an outage cannot
     * become unmetered spending.
     */
    onOutage: outagePolicy.default('refuse'),
  })
  .prefault({});

export type ProfileLimits = z.infer<typeof profileLimitsSchema>;

/**
 * Limits as a file or a built-in profile gives them: every field optional and without default,
 * so that a file setting `rpm` alone keeps the built-in profile's other limits.
 */
const profileLimitsPatch = z.strictObject({
  rpm: limitValue.optional(),
  tpm: limitValue.optional(),
  concurrency: limitValue.optional(),
  dailyTokens: limitValue.optional(),
  monthlyTokens: limitValue.optional(),
  onOutage: outagePolicy.optional(),
});

const redisUrl = z
  .string()
  .superRefine((value, ctx) => {
    let url: URL | null = null;
    try {
      url = new URL(value);
    } catch {
      // Reported below.
    }
    if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || !url.hostname) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be a URL such as redis://127.0.0.1:6379 or rediss://host:6380',
      });
    }
  })
  // A Redis URL often carries a password: keep it out of logs and printed configurations.
  .transform((value) => new Secret(value, 'limits.redisUrl'));

/** Where limit counters live, and the limit on failed authentications per client address. */
export const limitsSchema = z
  .strictObject({
    /** Shared counters for every replica; without it, each process counts in memory alone. */
    redisUrl: redisUrl.optional(),
    /** Prefix of every Redis key; replicas (and `keys usage`) that share counters share it. */
    prefix: z
      .string()
      .regex(
        /^[A-Za-z0-9:_.-]{1,64}$/,
        'expected 1 to 64 letters, digits or : _ . - (e.g. mg:prod:)',
      )
      .default('mistral-guard:'),
    /** Failed authentications allowed per client address per minute; 0 turns the limit off. */
    authFailuresPerMinute: z.coerce.number().int().min(0).default(20),
  })
  .prefault({});

export type LimitsConfig = z.infer<typeof limitsSchema>;

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
  limits: profileLimitsSchema,
});

export type Profile = z.infer<typeof profileSchema>;

/** The schema inside a `.default()` or `.prefault()`, so a missing field stays missing. */
function withoutDefault(schema: z.ZodType): z.ZodType {
  const def = schema._zod.def as { type: string; innerType?: z.ZodType };
  return (def.type === 'default' || def.type === 'prefault') && def.innerType
    ? def.innerType
    : schema;
}

/**
 * A profile as the file or a built-in gives it: only the fields it sets, no defaults filled in,
 * so that changing one field of a built-in profile keeps the built-in's other values.
 */
const partialProfileSchema = z
  .strictObject(
    Object.fromEntries(
      Object.entries(profileSchema.shape).map(([name, field]) => [
        name,
        withoutDefault(field).optional(),
      ]),
    ),
  )
  .extend({ limits: profileLimitsPatch.optional() }) as unknown as ReturnType<
  typeof profileSchema.partial
>;

/** The built-in profiles; the file may change them and add others. */
export const DEFAULT_PROFILES: Record<string, z.input<typeof partialProfileSchema>> = {
  // Development keys leak most often (laptops, committed .env files): a daily budget caps the
  // damage, and a Redis outage on a workstation does not stop work.
  development: {
    limits: { rpm: 120, tpm: 500_000, concurrency: 8, dailyTokens: 1_000_000, onOutage: 'allow' },
  },
  staging: {
    limits: {
      rpm: 300,
      tpm: 1_000_000,
      concurrency: 16,
      dailyTokens: 5_000_000,
      onOutage: 'allow',
    },
  },
  production: { maxTokens: 4096, limits: { onOutage: 'refuse' } },
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
        /** Longest time to receive a request's headers: slow-header clients are cut off. */
        headersTimeoutMs: positiveInt.default(10_000),
        /** Longest time to receive a whole request, body included (not the answer). */
        requestTimeoutMs: positiveInt.default(30_000),
        /** How long an idle keep-alive connection stays open. */
        keepAliveTimeoutMs: positiveInt.default(5_000),
        /** Requests one keep-alive connection may carry before it is closed. */
        maxRequestsPerSocket: positiveInt.default(1_000),
        /** Open connections at once; more are refused at accept. */
        maxConnections: positiveInt.default(4_096),
        /** Largest request header block, in bytes; larger gets 431. */
        maxHeaderBytes: positiveInt.default(16_384),
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
    limits: limitsSchema,
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
      const limits = { ...DEFAULT_PROFILES[name]?.limits, ...raw.profiles[name]?.limits };
      profiles[name] = profileSchema.parse({
        ...DEFAULT_PROFILES[name],
        ...raw.profiles[name],
        limits,
      });
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
