import type { UpstreamKeyConfig } from '../config/schema.js';
import type { Secret } from '../config/secret.js';
import type { Logger } from '../logging.js';
import type { UpstreamKeyErrorCode } from './errors.js';
import type { Environment, KeySource, KeySourceKind } from './source.js';
import type { VerifyResult } from './verify.js';

// The shapes the upstream key provider takes and gives: its options, its status, the outcome
// of a refresh and the record of a rotation. Nothing it reports holds a key.

/** What the provider reports about one environment's key; never the key itself. */
export interface UpstreamKeyStatus {
  source: KeySourceKind;
  /** Where the key in use was found: a variable, a file, a secret and field. */
  location: string;
  /** A short hash naming the key in use (see `keyFingerprint`). */
  fingerprint: string | null;
  /** The source's version of the key in use, when the source keeps versions. */
  version: string | null;
  /** When the key in use was taken into use by this process, ISO 8601. */
  loadedAt: string | null;
  /**
   * When the key in use was first seen, by this process or an earlier one sharing the data
   * directory; ISO 8601. A key older than `upstreamKey.rotationDays` adds a warning.
   */
  firstSeenAt: string | null;
  /** Whole days since `firstSeenAt`. */
  ageDays: number | null;
  /** When the source was last read successfully. */
  refreshedAt: string | null;
  /** The last failure to load, accept or use a key; cleared by the next success. */
  lastError: { code: UpstreamKeyErrorCode; message: string; at: string } | null;
  /** The last live check of the key in use. */
  verified: { result: VerifyResult['result']; status: number | null; at: string } | null;
  /** Until when the previous key is kept as a fallback, after a rotation. */
  fallbackUntil: string | null;
  warnings: string[];
  /** A key is loaded and Mistral did not refuse it at the last check. */
  ok: boolean;
}

/** What a refresh did for one environment. */
export interface RefreshOutcome {
  environment: string;
  outcome: 'unchanged' | 'changed' | 'refused' | 'failed';
  code?: UpstreamKeyErrorCode;
}

/** How `rotate` checks and stores the new key. */
export interface RotateOptions {
  /** Who rotated, for the audit trail: `cli:alice@host`, `admin:<token id>`. */
  actor: string;
  /** Check the new key with Mistral first and refuse it unless valid; default true. */
  verify?: boolean;
  /** Fail when the source cannot be written, instead of switching this process alone. */
  requireWrite?: boolean;
}

/** An audit-ready record of a rotation: who, when, which environment; never a key. */
export interface RotationResult {
  event: 'upstream_key.rotated';
  environment: string;
  actor: string;
  at: string;
  source: KeySourceKind;
  location: string;
  fingerprint: string;
  previousFingerprint: string | null;
  /** True when the new key was written to the source, where other replicas read it. */
  written: boolean;
  version: string | null;
  verified: { result: VerifyResult['result']; status: number | null } | null;
  /** Until when this process keeps the previous key as a fallback. */
  graceUntil: string | null;
}

/** Options of `createUpstreamKeyProvider`: the configuration, a logger, and test seams. */
export interface UpstreamKeyProviderOptions {
  config: {
    environments: string[];
    /** Where the first-seen date of each key is kept (see `ageFile`). */
    dataDir?: string;
    upstream: { baseUrl: string };
    upstreamKey: UpstreamKeyConfig;
  };
  logger: Logger;
  /** Environments to load instead of `config.environments`. */
  environments?: string[];
  /** Sources to use instead of the configured ones, by environment. */
  sources?: Record<string, KeySource>;
  /** The variables now; default the process environment over `./.env`, read at each call. */
  readEnv?: () => Promise<Environment>;
  cwd?: string;
  /** The live check; default `verifyKey` against `config.upstream.baseUrl`. */
  verify?: (key: Secret) => Promise<VerifyResult>;
  /**
   * Check the keys loaded at start and changed keys read by a refresh; default
   * `upstreamKey.verify`. A rotation checks its new key either way (see `RotateOptions`).
   */
  verifyLoaded?: boolean;
  now?: () => number;
  /**
   * The file keeping the date each key was first seen; null keeps them in memory only.
   * Default `upstream-keys.json` in `config.dataDir` when that directory exists.
   */
  ageFile?: string | null;
  /** Re-read every source each `refreshSeconds`; default true. */
  timer?: boolean;
}
