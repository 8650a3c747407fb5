import { AsyncLocalStorage } from 'node:async_hooks';
import type { HTTPClient, Mistral, SDKOptions } from '@mistralai/mistralai';
import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import { isGuardError } from '../errors.js';
import type { GuardOutcome } from '../gateway/guard.js';
import { type CallScope, guardedFetcher } from './fetch.js';
import { type AuditContext, GuardRuntime, type GuardRuntimeOptions } from './runtime.js';

/** Options of `createGuardedClient`: the runtime's, plus the client to wrap. */
export interface GuardedClientOptions extends GuardRuntimeOptions {
  /**
   * An official `Mistral` client. Its key, server URL, retries, timeouts and HTTP client (with
   * its hooks) are kept. Absent: one is built from the configuration, with `upstream.baseUrl`
   * and the environment's upstream key (`MISTRAL_API_KEY_<ENV>`, then `MISTRAL_API_KEY`).
   */
  client?: Mistral;
}

/** What a guarded client adds to the SDK's own surface. */
export interface GuardedClientExtras {
  /**
   * A view of the same client whose calls are audited (and counted against limits) for this
   * caller. Cheap: make one per incoming request.
   */
  withContext(context: AuditContext): GuardedMistral;
  /** Releases the limit store's connections (Redis); the audit sink belongs to the caller. */
  close(): Promise<void>;
}

/** An official `Mistral` client with the gateway's protections in its path. */
export type GuardedMistral = Mistral & GuardedClientExtras;

type SdkModule = typeof import('@mistralai/mistralai');

const scopes = new AsyncLocalStorage<CallScope>();
const NO_SCOPE: CallScope = Object.freeze({ context: Object.freeze({}) });
const runtimes = new WeakMap<object, GuardRuntime>();
/** Reads the real client out of a view. */
const UNWRAP = Symbol('mistral-guard.client');

/**
 * Wraps an official Mistral client in the gateway's pipeline. Every call it makes goes through
 * the policy (models, `max_tokens`), validation, the content guard on prompts and answers
 * (streams included), the limits and the audit trail, with the gateway's own functions and
 * configuration, so the same request gets the same decision here and at a gateway.
 *
 * The result is a real `Mistral` client: the same methods, arguments and result types, so
 * swapping it in changes no calling code. A refusal rejects with a GuardError (`code`,
 * `status`, `param`, `issues`), as would the SDK's own error from a gateway; upstream errors and
 * network failures keep the SDK's error types.
 *
 * The SDK is loaded when this is called: `@mistralai/mistralai` must be installed.
 *
 * @example
 * const mistral = await createGuardedClient({ config: await loadConfig() });
 * const answer = await mistral.chat.complete({
 *   model: 'mistral-small-latest',
 *   messages: [{ role: 'user', content: 'Hello' }],
 * });
 */
export async function createGuardedClient(
  options: GuardedClientOptions = {},
): Promise<GuardedMistral> {
  const config = options.config ?? (await loadConfig());
  const runtime = new GuardRuntime(config, options);
  const base = options.client;
  let settings: SDKOptions;
  try {
    settings = sdkOptions(base, runtime);
  } catch (error) {
    await runtime.close();
    throw error;
  }
  const sdk: SdkModule = await import('@mistralai/mistralai');
  const own = base?._options.httpClient;
  const forward = own ? (req: Request) => own.request(req) : (req: Request) => fetch(req);
  let basePath = '';
  const fetcher = guardedFetcher(
    runtime,
    forward,
    () => scopes.getStore() ?? NO_SCOPE,
    () => basePath,
  );
  const httpClient: HTTPClient = new sdk.HTTPClient({ fetcher });
  const Client = (base?.constructor as typeof Mistral | undefined) ?? sdk.Mistral;
  const inner = new Client({ ...settings, httpClient });
  basePath = inner._baseURL?.pathname.replace(/\/+$/, '') ?? '';
  runtimes.set(inner, runtime);
  return view(inner, NO_SCOPE, inner, runtime) as GuardedMistral;
}

/** The SDK options of the wrapped client: the caller's, or built from the configuration. */
function sdkOptions(base: Mistral | undefined, runtime: GuardRuntime): SDKOptions {
  if (base) {
    // The hooks object belongs to the caller's instance; the new one registers its own.
    const { hooks: _hooks, ...rest } = base._options;
    return rest;
  }
  const key = runtime.config.upstreamKeys[runtime.environment];
  if (!key) {
    throw new ConfigError([
      {
        path: 'upstream key',
        message:
          `no upstream Mistral key for environment "${runtime.environment}": set ` +
          'MISTRAL_API_KEY and serve the environment (`environments`), or pass `client`',
      },
    ]);
  }
  return { apiKey: key.reveal(), serverURL: runtime.config.upstream.baseUrl };
}

/**
 * The runtime behind a guarded client, so a web middleware can share its configuration, limits
 * and audit sink. Undefined for any other object.
 */
export function runtimeOf(client: object): GuardRuntime | undefined {
  return runtimes.get((client as { [UNWRAP]?: object })[UNWRAP] ?? client);
}

/**
 * A guarded client bound to one caller, carrying what the middleware's inspection of the same
 * content found so the call's audit event counts it.
 */
export function bindClient(
  client: GuardedMistral,
  context: AuditContext,
  carried: GuardOutcome | null,
): GuardedMistral {
  const inner = (client as unknown as { [UNWRAP]: Mistral })[UNWRAP];
  return view(inner, { context, carried }, inner, runtimes.get(inner)!) as GuardedMistral;
}

/**
 * A proxy over an SDK object (the client or one of its namespaces such as `chat`). Methods run
 * inside the caller's scope, so the fetcher knows whom a request is for, and a refusal the SDK
 * wrapped in its own client error comes out as the GuardError it is. The SDK object itself is
 * untouched: its methods see the real instance as `this`.
 */
function view(target: object, scope: CallScope, root: Mistral, runtime: GuardRuntime): object {
  const cache = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(obj, prop) {
      if (target === root) {
        if (prop === UNWRAP) return root;
        if (prop === 'withContext') {
          return (context: AuditContext) => view(root, { context }, root, runtime);
        }
        if (prop === 'close') return () => runtime.close();
      }
      if (cache.has(prop)) return cache.get(prop);
      const value: unknown = Reflect.get(obj, prop, obj);
      let out = value;
      if (typeof value === 'function') out = scoped(obj, value as Method, scope);
      else if (isSdkObject(value)) out = view(value, scope, root, runtime);
      else return value;
      cache.set(prop, out);
      return out;
    },
  });
}

type Method = (...args: unknown[]) => unknown;

function scoped(obj: object, method: Method, scope: CallScope): Method {
  return (...args) => {
    const result = scopes.run(scope, () => method.apply(obj, args));
    if (!isThenable(result)) return result;
    return result.then(undefined, (error: unknown) => {
      throw unwrap(error);
    });
  };
}

/** The GuardError a fetcher threw, out of the SDK error that wraps it. */
function unwrap(error: unknown): unknown {
  if (isGuardError(error)) return error;
  const cause = error instanceof Error ? error.cause : undefined;
  return isGuardError(cause) ? cause : error;
}

function isThenable(value: unknown): value is Promise<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** The SDK's namespaces are instances carrying the client options. */
function isSdkObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && '_options' in value;
}
