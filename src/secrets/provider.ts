import { ConfigError, type ConfigProblem } from '../config/errors.js';
import { readEnvironment } from '../config/load.js';
import type { Secret } from '../config/secret.js';
import { GuardError } from '../errors.js';
import type { Logger } from '../logging.js';
import { checkCandidate, type KeyRules, keyRulesOf } from './checks.js';
import { isUpstreamKeyError, UpstreamKeyError, type UpstreamKeyErrorCode } from './errors.js';
import { KeyAges, keyAgePath } from './key-age.js';
import { keyFingerprint } from './key-shape.js';
import type {
  RefreshOutcome,
  RotateOptions,
  RotationResult,
  UpstreamKeyProviderOptions,
  UpstreamKeyStatus,
} from './provider-types.js';
import type { KeySource, LoadedKey } from './source.js';
import { createKeySource } from './sources.js';
import { type VerifyResult, verifyKey } from './verify.js';

export type {
  RefreshOutcome,
  RotateOptions,
  RotationResult,
  UpstreamKeyProviderOptions,
  UpstreamKeyStatus,
} from './provider-types.js';

interface KeyEntry {
  secret: Secret;
  fingerprint: string;
}

interface EnvState {
  environment: string;
  source: KeySource;
  location: string;
  current: KeyEntry | null;
  previous: { entry: KeyEntry; until: number } | null;
  /**
   * The fingerprint of what the source last returned. A refresh acts only when the source's
   * value changes, so a rotation done in this process alone (an env source) or a fall-back
   * to the previous key is not undone by reading the old value again.
   */
  sourceSeen: string | null;
  version: string | null;
  loadedAt: number | null;
  refreshedAt: number | null;
  lastError: UpstreamKeyStatus['lastError'];
  verified: UpstreamKeyStatus['verified'];
  /** What the source reported about where the key is kept (a file others can read). */
  warnings: string[];
  /** What the checks said about the key in use (a shape only warned about). */
  keyWarning: string | null;
  /** Operations that change the state run one at a time per environment. */
  queue: Promise<unknown>;
  refreshing: Promise<RefreshOutcome> | null;
  /** The fingerprint last alerted about, so a burst of 401s raises one alert. */
  alerted: string | null;
  recoveryAt: number;
}

/** Whether a key may be taken into use, what the live check said, and what to warn about. */
interface Judgement {
  error: UpstreamKeyError | null;
  verified: EnvState['verified'];
  warning: string | null;
}

/** Marks the location of a key that replaced its source's value in this process only. */
const IN_MEMORY = ', replaced in memory';

/** Least time between two refreshes set off by a key Mistral refused. */
const RECOVERY_REFRESH_MS = 30_000;

/**
 * Holds the upstream key of every served environment: loaded from its source at start, read
 * again on a timer or on demand, rotated without dropping a request. `current` is what the hot
 * path calls: a map lookup, no I/O. Create it with `createUpstreamKeyProvider`.
 */
export class UpstreamKeyProvider {
  readonly #states = new Map<string, EnvState>();
  readonly #logger: Logger;
  readonly #rules: KeyRules;
  readonly #graceMs: number;
  readonly #verify: (key: Secret) => Promise<VerifyResult>;
  readonly #verifyLoaded: boolean;
  readonly #now: () => number;
  readonly #ages: KeyAges;
  readonly #rotationDays: number;
  #timer: NodeJS.Timeout | null = null;

  /** Use `createUpstreamKeyProvider`, which loads and checks every key first. */
  constructor(options: UpstreamKeyProviderOptions, sources: Map<string, KeySource>) {
    const { config } = options;
    this.#logger = options.logger;
    this.#rules = keyRulesOf(config.upstreamKey);
    this.#graceMs = config.upstreamKey.graceSeconds * 1000;
    this.#now = options.now ?? Date.now;
    const timeoutMs = config.upstreamKey.timeoutMs;
    this.#verify =
      options.verify ?? ((key) => verifyKey(config.upstream.baseUrl, key, { timeoutMs }));
    this.#verifyLoaded = options.verifyLoaded ?? config.upstreamKey.verify;
    this.#rotationDays = config.upstreamKey.rotationDays;
    const ageFile =
      options.ageFile !== undefined
        ? options.ageFile
        : keyAgePath(config.dataDir, options.cwd ?? process.cwd());
    this.#ages = new KeyAges({
      path: ageFile,
      rotationDays: this.#rotationDays,
      onError: (error) =>
        this.#logger.warn(
          { code: (error as { code?: string })?.code ?? null },
          'the first-seen dates of upstream keys could not be saved; after a restart, ages count from then',
        ),
    });
    for (const [environment, source] of sources) {
      this.#states.set(environment, {
        environment,
        source,
        location: source.location,
        current: null,
        previous: null,
        sourceSeen: null,
        version: null,
        loadedAt: null,
        refreshedAt: null,
        lastError: null,
        verified: null,
        warnings: [],
        keyWarning: null,
        queue: Promise.resolve(),
        refreshing: null,
        alerted: null,
        recoveryAt: 0,
      });
    }
  }

  /**
   * The key new requests of `environment` use. Synchronous and free of I/O: it is on every
   * request. Throws `upstream_auth_failed` for an environment without a key.
   *
   * @example
   * const key = provider.current(ctx.environment);
   * headers.authorization = `Bearer ${key.reveal()}`;
   */
  current(environment: string): Secret {
    const entry = this.#states.get(environment)?.current;
    if (entry) return entry.secret;
    const cause = new UpstreamKeyError('key_missing', `no upstream key for "${environment}"`);
    throw new GuardError('upstream_auth_failed', { cause });
  }

  /**
   * Every upstream key the gateway holds, current ones and those in a rotation's grace window,
   * so a caller's text that carries one can have it replaced. Without I/O.
   */
  held(): Secret[] {
    const keys: Secret[] = [];
    for (const state of this.#states.values()) {
      if (state.current) keys.push(state.current.secret);
      if (state.previous) keys.push(state.previous.entry.secret);
    }
    return keys;
  }

  /** The previous key of `environment` while its grace window lasts after a rotation. */
  fallback(environment: string): Secret | null {
    const state = this.#states.get(environment);
    if (!state?.previous) return null;
    if (state.previous.until <= this.#now()) state.previous = null;
    return state.previous?.entry.secret ?? null;
  }

  /**
   * Tells the provider Mistral answered 401 to a request sent with `keyUsed`, and returns the
   * key to retry that request with once, or null when there is none (answer 503
   * `upstream_auth_failed`). Call it for 401 only: a 403 can be about a model, not the key.
   *
   * - The key in use was refused while the previous one is in its grace window: the new key
   *   is not (yet) accepted, so the previous one is taken back into use, with an alert.
   * - The previous key was refused (revoked after the rotation): it is dropped, so no
   *   request sends it again; the retry uses the key in use.
   * - The key in use was refused and there is no fallback: an alert, and the source is read
   *   again in the background, in case it already holds a new key.
   *
   * @example
   * if (res.statusCode === 401) {
   *   const retry = provider.onUnauthorized(env, keyUsed);
   *   if (retry) return send(retry);
   *   throw new GuardError('upstream_auth_failed');
   * }
   */
  onUnauthorized(environment: string, keyUsed: Secret): Secret | null {
    const state = this.#states.get(environment);
    if (!state?.current) return null;
    const previous = this.fallback(environment) ? state.previous : null;
    const used = keyFingerprint(keyUsed);
    const log = { environment, source: state.source.kind, fingerprint: used };

    if (previous && used === previous.entry.fingerprint) {
      state.previous = null;
      this.#logger.warn(log, 'previous upstream key refused; its fallback is dropped');
      return state.current.secret;
    }
    if (used !== state.current.fingerprint) {
      // A key this environment no longer uses (another request already moved on).
      return state.current.secret;
    }
    this.#fail(state, 'key_invalid', 'Mistral refused the key in use (401)');
    state.verified = { result: 'invalid', status: 401, at: this.#iso() };
    if (previous) {
      const rejected = state.current;
      state.current = previous.entry;
      state.previous = null;
      state.loadedAt = this.#now();
      const fallback = { fallbackFingerprint: previous.entry.fingerprint, alert: 'upstream_key' };
      this.#logger.error({ ...log, ...fallback }, 'upstream key refused; previous key restored');
      state.alerted = rejected.fingerprint;
      return previous.entry.secret;
    }
    if (state.alerted !== used) {
      state.alerted = used;
      this.#logger.error({ ...log, alert: 'upstream_key' }, 'upstream key refused; no fallback');
    }
    if (this.#now() - state.recoveryAt >= RECOVERY_REFRESH_MS) {
      state.recoveryAt = this.#now();
      void this.refresh(environment);
    }
    return null;
  }

  /** Per environment: where its key comes from, since when, the last error and check. */
  status(): Record<string, UpstreamKeyStatus> {
    const out: Record<string, UpstreamKeyStatus> = {};
    for (const [environment, s] of this.#states) {
      const fallback = this.fallback(environment) ? s.previous : null;
      const age = s.current ? this.#ages.age(s.current.fingerprint, this.#now()) : null;
      const warnings = s.keyWarning ? [...s.warnings, s.keyWarning] : [...s.warnings];
      if (age?.overdue) {
        warnings.push(
          `the key in use was first seen ${age.ageDays} days ago, past the rotation period ` +
            `of ${this.#rotationDays} days: rotate it`,
        );
      }
      out[environment] = {
        source: s.source.kind,
        location: s.location,
        fingerprint: s.current?.fingerprint ?? null,
        version: s.version,
        loadedAt: this.#isoOrNull(s.loadedAt),
        firstSeenAt: age?.firstSeenAt ?? null,
        ageDays: age?.ageDays ?? null,
        refreshedAt: this.#isoOrNull(s.refreshedAt),
        lastError: s.lastError,
        verified: s.verified,
        fallbackUntil: this.#isoOrNull(fallback?.until ?? null),
        warnings,
        ok: s.current !== null && s.verified?.result !== 'invalid',
      };
    }
    return out;
  }

  /**
   * Reads the sources again (all, or one environment). A changed value is checked (shape,
   * separation, live check when enabled) and then used like a rotation: new requests take
   * it, the old key stays a fallback for the grace window. A failure keeps the last good key
   * and is logged and shown in `status()`. Never throws.
   */
  async refresh(environment?: string): Promise<RefreshOutcome[]> {
    const states = environment
      ? [this.#states.get(environment)].filter((s) => s !== undefined)
      : [...this.#states.values()];
    return Promise.all(states.map((state) => this.#refreshOnce(state)));
  }

  /**
   * Switches an environment to a new key with no downtime: new requests use it at once,
   * requests in flight finish with the key they hold, and the old key stays a fallback for
   * `graceSeconds`. The key is checked first (shape, separation, live check unless
   * `verify: false`) and written to the source when it can be written, which is how other
   * replicas learn of it (at their next refresh). Throws UpstreamKeyError; nothing changes
   * then.
   *
   * @example
   * const record = await provider.rotate('production', newKey, { actor: 'admin:ops' });
   * audit.record(record); // who, when, which environment and fingerprints; no key
   */
  async rotate(
    environment: string,
    newKey: Secret,
    options: RotateOptions,
  ): Promise<RotationResult> {
    const state = this.#states.get(environment);
    if (!state) {
      throw new UpstreamKeyError('key_missing', `"${environment}" is not served here`);
    }
    return this.#exclusive(state, () => this.#rotate(state, newKey, options));
  }

  /** Starts reading every source each `seconds`; the timer does not keep the process alive. */
  startTimer(seconds: number): void {
    this.close();
    if (seconds <= 0) return;
    this.#timer = setInterval(() => void this.refresh(), seconds * 1000);
    this.#timer.unref();
  }

  /** Stops the refresh timer; the keys stay usable. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Loads every key for the first time; problems come back as ConfigProblems. */
  async loadAll(): Promise<ConfigProblem[]> {
    const states = [...this.#states.values()];
    const results = await Promise.all(
      states.map((state) => state.source.load().catch((error: unknown) => asKeyError(error))),
    );
    const problems: ConfigProblem[] = [];
    const loaded: Array<[EnvState, LoadedKey]> = [];
    states.forEach((state, i) => {
      const result = results[i]!;
      if (result instanceof UpstreamKeyError) problems.push(problemOf(state, result));
      else loaded.push([state, result]);
    });
    for (const [state, key] of loaded) this.#adopt(state, key, null, key.key.source);
    // Separation is judged once every key is in, so each environment sees all the others.
    for (const [state, key] of loaded) {
      const { error, warning } = checkCandidate(
        this.#candidate(state, key.key, key.own),
        this.#rules,
      );
      if (error) problems.push(problemOf(state, error));
      state.keyWarning = warning;
    }
    if (problems.length) return problems;

    for (const state of states) {
      for (const warning of this.status()[state.environment]?.warnings ?? []) {
        this.#logger.warn({ environment: state.environment, warning }, 'upstream key warning');
      }
      this.#logger.info(this.#logFields(state), 'upstream key loaded');
    }
    await Promise.all(states.map((state) => this.#check(state)));
    return [];
  }

  async #refreshOnce(state: EnvState): Promise<RefreshOutcome> {
    state.refreshing ??= this.#exclusive(state, () => this.#refresh(state)).finally(() => {
      state.refreshing = null;
    });
    return state.refreshing;
  }

  async #refresh(state: EnvState): Promise<RefreshOutcome> {
    const { environment } = state;
    let loaded: LoadedKey;
    try {
      loaded = await state.source.load();
    } catch (error) {
      const e = asKeyError(error);
      this.#fail(state, e.code, e.message);
      this.#logger.warn({ ...this.#logFields(state), code: e.code }, 'upstream key refresh failed');
      return { environment, outcome: 'failed', code: e.code };
    }
    state.refreshedAt = this.#now();
    state.warnings = [...loaded.warnings];
    const fingerprint = keyFingerprint(loaded.key);
    // A key Mistral refuses makes any other value at the source worth a try, even one seen
    // before (a new key that was refused while it was still being activated).
    const refused =
      state.verified?.result === 'invalid' && fingerprint !== state.current?.fingerprint;
    if (fingerprint === state.sourceSeen && !refused) {
      if (state.lastError?.code.startsWith('source_')) state.lastError = null;
      return { environment, outcome: 'unchanged' };
    }

    const mode = this.#verifyLoaded ? 'lenient' : 'skip';
    const { error, verified, warning } = await this.#judge(state, loaded.key, loaded.own, mode);
    if (error) {
      this.#fail(state, error.code, error.message);
      const fields = { ...this.#logFields(state), code: error.code, candidate: fingerprint };
      this.#logger.error(fields, 'upstream key from the source refused; previous key kept');
      return { environment, outcome: 'refused', code: error.code };
    }
    const previous = state.current;
    this.#adopt(state, loaded, previous, loaded.key.source);
    state.verified = verified;
    state.keyWarning = warning;
    this.#logger.info(
      { ...this.#logFields(state), previousFingerprint: previous?.fingerprint ?? null },
      'upstream key changed at its source',
    );
    return { environment, outcome: 'changed' };
  }

  async #rotate(state: EnvState, key: Secret, options: RotateOptions): Promise<RotationResult> {
    const fingerprint = keyFingerprint(key);
    if (fingerprint === state.current?.fingerprint) {
      const message = `the new key is the key "${state.environment}" already uses`;
      throw new UpstreamKeyError('key_unchanged', message);
    }
    const readOnly = new UpstreamKeyError(
      'source_read_only',
      `${state.source.location} cannot be written by mistral-guard`,
    );
    if (options.requireWrite && !state.source.write) throw readOnly;
    const mode = options.verify === false ? 'skip' : 'strict';
    const { error, verified, warning: keyWarning } = await this.#judge(state, key, true, mode);
    if (error) throw error;

    let written: { version: string | null } | null = null;
    try {
      if (!state.source.write) throw readOnly;
      written = await state.source.write(key);
    } catch (error) {
      if (options.requireWrite || !isUpstreamKeyError(error, 'source_read_only')) throw error;
    }

    const previous = state.current;
    const loaded = { key, version: written?.version ?? null, own: true, warnings: state.warnings };
    state.keyWarning = keyWarning;
    // Written, the source holds the key and a refresh reads it back unchanged. Not written,
    // the source still holds the old value, which `sourceSeen` keeps from being taken back.
    const inMemory = state.location.endsWith(IN_MEMORY)
      ? state.location
      : `${state.location}${IN_MEMORY}`;
    const location = written ? state.source.location : inMemory;
    this.#adopt(state, loaded, previous, location, written !== null);
    state.verified = verified;
    const result: RotationResult = {
      event: 'upstream_key.rotated',
      environment: state.environment,
      actor: options.actor,
      at: this.#iso(),
      source: state.source.kind,
      location,
      fingerprint,
      previousFingerprint: previous?.fingerprint ?? null,
      written: written !== null,
      version: written?.version ?? null,
      verified: verified && { result: verified.result, status: verified.status },
      graceUntil: this.#isoOrNull(state.previous?.until ?? null),
    };
    const { event: _event, ...fields } = result;
    this.#logger.info(fields, 'upstream key rotated');
    return result;
  }

  /**
   * Whether `key` may become the key of `state`'s environment, and what the live check said.
   * `strict` also refuses a key Mistral could not be asked about; `lenient` takes it (the
   * fallback covers a bad one); `skip` does not ask.
   */
  async #judge(
    state: EnvState,
    key: Secret,
    own: boolean,
    mode: 'strict' | 'lenient' | 'skip',
  ): Promise<Judgement> {
    const { environment } = state;
    const { error, warning } = checkCandidate(this.#candidate(state, key, own), this.#rules);
    if (error) return { error, verified: null, warning };
    if (warning) this.#logger.warn({ environment, warning }, 'upstream key warning');
    if (mode === 'skip') return { error: null, verified: null, warning };

    const checked = await this.#verify(key);
    const verified = { result: checked.result, status: checked.status ?? null, at: this.#iso() };
    const status = checked.status ? ` (${checked.status})` : '';
    if (checked.result === 'invalid') {
      const refused = new UpstreamKeyError('key_invalid', `Mistral refused the key${status}`);
      return { error: refused, verified, warning };
    }
    if (checked.result === 'unreachable' && mode === 'strict') {
      const message = `Mistral could not be asked whether the key is valid${status}`;
      return { error: new UpstreamKeyError('key_unverified', message), verified, warning };
    }
    return { error: null, verified, warning };
  }

  /** Makes `loaded` the key in use; the key it replaces becomes the fallback. */
  #adopt(
    state: EnvState,
    loaded: LoadedKey,
    previous: KeyEntry | null,
    location: string,
    fromSource = true,
  ): void {
    const entry = { secret: loaded.key, fingerprint: keyFingerprint(loaded.key) };
    this.#ages.see(entry.fingerprint, this.#now());
    state.current = entry;
    state.previous = previous ? { entry: previous, until: this.#now() + this.#graceMs } : null;
    if (fromSource) state.sourceSeen = entry.fingerprint;
    state.location = location;
    state.version = loaded.version;
    state.warnings = [...loaded.warnings];
    state.loadedAt = this.#now();
    state.refreshedAt ??= state.loadedAt;
    state.lastError = null;
    state.alerted = null;
  }

  /** The live check of the key in use at start; the result shows in the status. */
  async #check(state: EnvState): Promise<void> {
    if (!this.#verifyLoaded || !state.current) return;
    const checked = await this.#verify(state.current.secret);
    state.verified = { result: checked.result, status: checked.status ?? null, at: this.#iso() };
    const fields = { ...this.#logFields(state), result: checked.result, status: checked.status };
    if (checked.result === 'valid') {
      this.#logger.info(fields, 'upstream key verified');
    } else if (checked.result === 'unreachable') {
      this.#logger.warn(fields, 'upstream key not verified');
    } else {
      this.#fail(state, 'key_invalid', `Mistral refused the key (${checked.status})`);
      this.#logger.error({ ...fields, alert: 'upstream_key' }, 'upstream key refused by Mistral');
    }
  }

  #candidate(state: EnvState, key: Secret, own: boolean) {
    const others: Array<readonly [string, Secret]> = [];
    for (const [name, s] of this.#states) if (s.current) others.push([name, s.current.secret]);
    return { environment: state.environment, key, own, others };
  }

  #fail(state: EnvState, code: UpstreamKeyErrorCode, message: string): void {
    state.lastError = { code, message, at: this.#iso() };
  }

  #logFields(state: EnvState) {
    return {
      environment: state.environment,
      source: state.source.kind,
      location: state.location,
      fingerprint: state.current?.fingerprint ?? null,
      version: state.version,
    };
  }

  #exclusive<T>(state: EnvState, work: () => Promise<T>): Promise<T> {
    const run = state.queue.then(work, work);
    state.queue = run.catch(() => {});
    return run;
  }

  #iso(): string {
    return new Date(this.#now()).toISOString();
  }

  #isoOrNull(ms: number | null): string | null {
    return ms === null ? null : new Date(ms).toISOString();
  }
}

function asKeyError(error: unknown): UpstreamKeyError {
  if (error instanceof UpstreamKeyError) return error;
  return new UpstreamKeyError('source_failed', 'the key source failed unexpectedly', {
    cause: error,
  });
}

function problemOf(state: EnvState, error: UpstreamKeyError): ConfigProblem {
  const path =
    state.source.kind === 'env' ? 'upstream key' : `upstreamKey.sources.${state.environment}`;
  return { path, message: `"${state.environment}": ${error.message} (${error.code})` };
}

/**
 * Loads and checks the upstream key of every served environment, then keeps them fresh.
 * Refuses to start (ConfigError listing every problem, never a value) when a key cannot be
 * loaded, does not look like a Mistral key, or is not the environment's own where the
 * configuration requires it (`upstreamKey.requireSeparateKeys`, production by default). The
 * live check runs unless `upstreamKey.verify` is false; its result is in `status()`, and a
 * refused key does not stop the start (it shows as not ok).
 *
 * @example
 * const keys = await createUpstreamKeyProvider({ config, logger });
 * process.on('SIGHUP', () => void keys.refresh());
 * const key = keys.current('production'); // on each request
 */
export async function createUpstreamKeyProvider(
  options: UpstreamKeyProviderOptions,
): Promise<UpstreamKeyProvider> {
  const { config } = options;
  const cwd = options.cwd ?? process.cwd();
  const readEnv = options.readEnv ?? (() => readEnvironment(cwd));
  const sources = new Map<string, KeySource>();
  for (const environment of options.environments ?? config.environments) {
    const configured = config.upstreamKey.sources[environment];
    const deps = { readEnv, cwd, timeoutMs: config.upstreamKey.timeoutMs };
    sources.set(
      environment,
      options.sources?.[environment] ?? createKeySource(environment, configured, deps),
    );
  }
  const provider = new UpstreamKeyProvider(options, sources);
  const problems = await provider.loadAll();
  if (problems.length) throw new ConfigError(problems);
  if (options.timer !== false) provider.startTimer(config.upstreamKey.refreshSeconds);
  return provider;
}

/**
 * Reads every source again when the process receives `signal` (SIGHUP by default), as daemons
 * reload on it. Returns the function that stops listening.
 *
 * @example
 * const stop = refreshOnSignal(keys);
 */
export function refreshOnSignal(
  provider: UpstreamKeyProvider,
  signal: NodeJS.Signals = 'SIGHUP',
): () => void {
  const listener = () => void provider.refresh();
  process.on(signal, listener);
  return () => process.off(signal, listener);
}
