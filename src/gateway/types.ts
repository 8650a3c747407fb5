import type { AuditEvent } from '../audit/event.js';
import type { Config } from '../config/load.js';
import type { KeyGuard, StoredKeyLimits } from '../keys/types.js';
import type { Logger } from '../logging.js';
import type { AdminDeps } from './admin.js';
import type { UpstreamKeys } from './forward.js';
import type { ContentGuard } from './guard.js';
import type { GatewayLimits } from './limits.js';
import type { GatewayMetrics } from './metrics.js';
import type { Upstream } from './upstream.js';

/** The part of a virtual key the gateway needs. */
export interface AuthenticatedKey {
  id: string;
  name: string;
  environment: string;
  models: string[] | null;
  maxTokens: number | null;
  /** The key's own limits; each null field takes the profile's. */
  limits?: StoredKeyLimits | null;
  /** The key's own guard rules, stricter than its profile's; null or absent when none. */
  guard?: KeyGuard | null;
}

/** Turns an Authorization header into a key, or throws a 401 GuardError saying why. */
export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<AuthenticatedKey>;
  /** Throws when the key store cannot be read; used by /readyz. */
  ping(): Promise<void>;
}

/**
 * The audit fields the gateway fills for every request: the stored event less what the trail
 * assigns itself (id, time).
 */
export type GatewayAuditEvent = Omit<AuditEvent, 'id' | 'time'>;

/** Where audit events go; `record` resolves once the event is durable. */
export interface AuditRecorder {
  record(event: GatewayAuditEvent): Promise<void>;
}

/** What the gateway is built from. */
export interface GatewayDeps {
  config: Config;
  logger: Logger;
  authenticator: Authenticator;
  /** Null disables the audit trail (only when the configuration says so). */
  audit: AuditRecorder | null;
  /** Injected by tests and benchmarks; otherwise built from `config.upstream`. */
  upstream?: Upstream;
  /** The compiled content guard per environment; built from the profiles when absent. */
  guards?: Map<string, ContentGuard>;
  /** False while the audit trail cannot take events (its spool is full), for `/readyz`. */
  auditHealthy?: (() => boolean) | undefined;
  /** Where answered requests are counted; set by the gateway itself. */
  metrics?: GatewayMetrics;
  /** The upstream key of each environment; the keys `loadConfig` found when absent. */
  upstreamKeys?: UpstreamKeys;
  /** The admin API; absent without an admin token. */
  admin?: Omit<AdminDeps, 'audit' | 'environments' | 'limits'>;
  /** The limits engine; built from the configuration (in memory or on Redis) when absent. */
  limits?: GatewayLimits;
}
