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
    if (/\/v1\/*$/.test(url.pathname)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'must not end with /v1: the gateway adds the API path (expected https://api.mistral.ai)',
      });
    }
  })
  .transform((value) => value.replace(/\/+$/, ''));

const positiveInt = z.coerce.number().int().positive();

/** An IPv4 or IPv6 address, or a CIDR block such as `10.0.0.0/8`. */
const cidr = z.string().superRefine((value, ctx) => {
  const [address, bits, extra] = value.split('/');
  const family = isIP(address ?? '');
  const max = family === 4 ? 32 : 128;
  const prefixOk =
    bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max && extra === undefined);
  if (family === 0 || !prefixOk) {
    ctx.addIssue({ code: 'custom', message: 'expected an IP address or CIDR such as 10.0.0.0/8' });
  }
});

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

const databaseUrl = z
  .string()
  .superRefine((value, ctx) => {
    let url: URL | null = null;
    try {
      url = new URL(value);
    } catch {
      // Reported below.
    }
    if (!url || (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be a URL such as postgres://user@127.0.0.1:5432/guard',
      });
    }
  })
  // The URL usually carries a password: keep it out of logs and printed configurations.
  .transform((value) => new Secret(value, 'store.databaseUrl'));

/**
 * Where keys and audit events live: the embedded SQLite files under `dataDir` by default, or a
 * PostgreSQL database shared by every replica when `databaseUrl` is set.
 */
export const storeSchema = z
  .strictObject({
    databaseUrl: databaseUrl.optional(),
    /** The PostgreSQL schema holding our tables; created when missing. */
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,39}$/, 'expected a lower-case schema name such as mistral_guard')
      .default('public'),
    /** Most pooled PostgreSQL connections per process. */
    poolSize: positiveInt.default(10),
  })
  .prefault({});

export type StoreConfig = z.infer<typeof storeSchema>;

/** The audit trail: where events go, how they are batched and signed, how long they are kept. */
export const auditSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /**
     * How much of a client address the trail keeps: `full`, `truncated` (IPv4 /24, IPv6 /48,
     * enough to tell networks apart, not people) or `none`.
     */
    clientIp: z.enum(['full', 'truncated', 'none']).default('full'),
    /**
     * Request and answer bodies kept with each event: off by default. When on, only requests
     * the content guard inspects get them, and only after redaction (every finding replaced,
     * whatever the action); each body is cut at `maxBytes` of JSON text.
     */
    bodies: z
      .strictObject({
        store: z.boolean().default(false),
        maxBytes: positiveInt.max(1024 * 1024, 'expected at most 1048576').default(64 * 1024),
      })
      .prefault({}),
    /** `store` is the key store's database; `jsonl` one JSON object per line, for a SIEM. */
    sinks: z
      .array(z.enum(['store', 'jsonl']))
      .min(1)
      .refine((list) => new Set(list).size === list.length, 'expected each sink once')
      .default(['store']),
    /** Where the `jsonl` sink writes: a file or `-` (stdout); default `<dataDir>/audit.jsonl`. */
    jsonlPath: z.string().min(1).optional(),
    /** Signs checkpoints; without it, checkpoints are written unsigned and verify says so. */
    hmacKey: z
      .string()
      .min(32, 'expected at least 32 characters')
      .transform((value) => new Secret(value, 'audit.hmacKey'))
      .optional(),
    /** A checkpoint after this many events of a chain... */
    checkpointEvery: positiveInt.default(1000),
    /** ...or this many seconds after the last, whichever comes first. */
    checkpointSeconds: positiveInt.default(60),
    /** Days events are kept; older ones are pruned. Null keeps them forever. */
    retentionDays: positiveInt.nullable().default(null),
    /** Most events written in one batch. */
    batchSize: positiveInt.default(512),
    /** Most events waiting per sink; beyond it `record` waits for room. */
    maxQueue: positiveInt.default(10_000),
    /** Largest spool file per sink; a full spool refuses events and fails /readyz. */
    spoolMaxBytes: positiveInt.default(256 * 1024 * 1024),
  })
  .prefault({});

export type AuditConfig = z.infer<typeof auditSchema>;

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

/**
 * The address of a secret manager. Secrets travel over it, so plain HTTP is refused except to a
 * loopback host (a local Vault agent, a test server).
 */
const secretServiceUrl = z
  .string()
  .superRefine((value, ctx) => {
    let url: URL | null = null;
    try {
      url = new URL(value);
    } catch {
      // Reported below.
    }
    const plainLoopback = url?.protocol === 'http:' && isLoopbackHost(url.hostname);
    if (!url || !(url.protocol === 'https:' || plainLoopback)) {
      ctx.addIssue({
        code: 'custom',
        message: 'expected an https:// URL (plain http:// only to a loopback host)',
      });
    } else if (url.username || url.password || url.search || url.hash) {
      ctx.addIssue({ code: 'custom', message: 'expected no credentials, query or fragment' });
    }
  })
  .transform((value) => value.replace(/\/+$/, ''));

const envVariable = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'expected a variable name such as VAULT_TOKEN');
const jsonField = z.string().min(1).max(256);

/** The key in the process environment: `MISTRAL_API_KEY_<ENV>`, then `MISTRAL_API_KEY`. */
const envKeySource = z.strictObject({
  source: z.literal('env'),
  /** Read this variable alone instead. */
  variable: envVariable.optional(),
});

/** The key in a file, such as a mounted Kubernetes or Docker secret; surrounding space is cut. */
const fileKeySource = z.strictObject({
  source: z.literal('file'),
  path: z.string().min(1),
});

/** AWS Secrets Manager. Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ... */
const awsKeySource = z.strictObject({
  source: z.literal('aws'),
  /** The secret's name or ARN. */
  secretId: z.string().min(1).max(2048),
  /** For a JSON secret: the field holding the key. Without it the whole string is the key. */
  field: jsonField.optional(),
  /** Default AWS_REGION, then AWS_DEFAULT_REGION. */
  region: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, 'expected a region such as eu-west-3')
    .optional(),
  versionStage: z.string().min(1).max(256).default('AWSCURRENT'),
  /** Default https://secretsmanager.REGION.amazonaws.com. */
  endpoint: secretServiceUrl.optional(),
});

/** GCP Secret Manager, through its REST API. */
const gcpKeySource = z.strictObject({
  source: z.literal('gcp'),
  project: z.string().regex(/^[a-z0-9-]{1,63}$/, 'expected a project id or number'),
  secret: z.string().regex(/^[A-Za-z0-9_-]{1,255}$/, 'expected a secret id such as mistral-key'),
  /** A version number or `latest`. */
  version: z
    .union([positiveInt, z.literal('latest')])
    .transform(String)
    .default('latest'),
  field: jsonField.optional(),
  /**
   * `default`: the service-account file named by GOOGLE_APPLICATION_CREDENTIALS, else the
   * metadata server; `metadata`: the metadata server only; `{ file }`: that service-account file.
   */
  credentials: z
    .union([z.enum(['default', 'metadata']), z.strictObject({ file: z.string().min(1) })])
    .default('default'),
  /** Default https://secretmanager.googleapis.com. */
  endpoint: secretServiceUrl.optional(),
});

/** HashiCorp Vault, KV version 2, logged in with a token or an AppRole. */
const vaultKeySource = z.strictObject({
  source: z.literal('vault'),
  address: secretServiceUrl,
  /** The KV v2 mount. */
  mount: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'expected a mount such as secret')
    .default('secret'),
  path: z
    .string()
    .regex(/^[A-Za-z0-9_.@-]+(\/[A-Za-z0-9_.@-]+)*$/, 'expected a path such as mistral/production'),
  field: jsonField.default('api_key'),
  /** A fixed version; without it, the latest. */
  version: positiveInt.optional(),
  /** Vault Enterprise namespace. */
  namespace: z.string().min(1).max(256).optional(),
  auth: z
    .discriminatedUnion('method', [
      z.strictObject({ method: z.literal('token'), tokenEnv: envVariable.default('VAULT_TOKEN') }),
      z.strictObject({
        method: z.literal('approle'),
        mount: z
          .string()
          .regex(/^[A-Za-z0-9_.-]+$/, 'expected a mount such as approle')
          .default('approle'),
        roleIdEnv: envVariable.default('VAULT_ROLE_ID'),
        secretIdEnv: envVariable.default('VAULT_SECRET_ID'),
      }),
    ])
    .default({ method: 'token', tokenEnv: 'VAULT_TOKEN' }),
});

export const keySourceSchema = z.discriminatedUnion('source', [
  envKeySource,
  fileKeySource,
  awsKeySource,
  gcpKeySource,
  vaultKeySource,
]);

/** Where one environment's upstream key comes from. */
export type KeySourceConfig = z.infer<typeof keySourceSchema>;

/** Where the upstream keys come from, how often they are read again, and how rotation behaves. */
export const upstreamKeySchema = z
  .strictObject({
    /** The source of each environment's key; an environment not listed reads the environment. */
    sources: z.record(environmentName, keySourceSchema).default({}),
    /** Seconds between reads of every source; 0 reads them only on demand. */
    refreshSeconds: z.coerce.number().int().min(0).default(300),
    /** Seconds the previous key stays available as a fallback after a rotation. */
    graceSeconds: z.coerce.number().int().min(0).default(3600),
    /**
     * Environments whose key must be their own: bound to them alone (not the shared
     * MISTRAL_API_KEY) and equal to no other served environment's key. `true` means all.
     */
    requireSeparateKeys: z.union([z.boolean(), z.array(environmentName)]).default(['production']),
    /** A key that is not 32 letters and digits: `refuse` it, or `warn` and use it. */
    shapeCheck: z.enum(['refuse', 'warn']).default('refuse'),
    /** Check each key loaded against `GET /v1/models`; the result shows in the status. */
    verify: z.boolean().default(true),
    /** Longest wait for one answer from a secret manager or from the live check. */
    timeoutMs: positiveInt.default(5000),
    /** Days a key may stay in use before the status and the log say it is due for rotation. */
    rotationDays: positiveInt.default(90),
  })
  .prefault({});

export type UpstreamKeyConfig = z.infer<typeof upstreamKeySchema>;

function isRegExp(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

/**
 * The leak scanner's allow-lists and baseline, used by `scan`, the pre-commit hook and `doctor`;
 * flags on the command line add to them.
 */
export const scanSchema = z
  .strictObject({
    /** Path globs, from the repository root, never scanned: fixtures, vendored files. */
    allowPaths: z.array(z.string().min(1).max(1024)).default([]),
    /** Regular expressions over a found value (decoded, without whitespace) that accept it. */
    allowPatterns: z
      .array(z.string().min(1).max(1024).refine(isRegExp, 'expected a regular expression'))
      .default([]),
    /** A baseline file of accepted findings, relative to the configuration file. */
    baseline: z.string().min(1).optional(),
  })
  .prefault({});

export type ScanConfig = z.infer<typeof scanSchema>;

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
        /** How long SIGTERM waits for requests and streams in flight before closing them. */
        shutdownTimeoutMs: positiveInt.default(30_000),
        /** TLS termination: PEM files, reloaded when they change. */
        tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
        /** Serve plain HTTP to non-loopback clients without TLS (only behind a private network). */
        allowInsecureHttp: z.boolean().default(false),
        /**
         * Proxies (addresses or CIDRs) that terminate TLS in front of the gateway: their
         * `X-Forwarded-Proto` and `X-Forwarded-For` are believed, nobody else's.
         */
        trustProxy: z.array(cidr).default([]),
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
        /** Retries of a failed call (connection error, 502, 503) before any byte was relayed. */
        retries: z.coerce.number().int().min(0).max(5).default(2),
        /** Consecutive failures that open the circuit breaker; 0 turns it off. */
        breakerThreshold: z.coerce.number().int().min(0).default(5),
        /** How long an open breaker fails fast before letting one probe through. */
        breakerCooldownMs: positiveInt.default(10_000),
      })
      .prefault({}),
    profiles: z.record(environmentName, partialProfileSchema).default({}),
    upstreamKey: upstreamKeySchema,
    limits: limitsSchema,
    store: storeSchema,
    audit: auditSchema,
    scan: scanSchema,
    /**
     * The admin API under `/admin`, present only when `MISTRAL_GUARD_ADMIN_TOKEN` is set;
     * `allowFrom` restricts it to these addresses or CIDRs.
     */
    admin: z.strictObject({ allowFrom: z.array(cidr).default([]) }).prefault({}),
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
