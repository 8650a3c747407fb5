import type { Checkpoint } from './checkpoint.js';
import type { StoredAuditEvent } from './sqlite-schema.js';

/** A stored event together with the chain it belongs to (`main` for the SQLite trail). */
export type ChainedAuditEvent = StoredAuditEvent & { chainId: string };

/** Which events a query, an export or the stats cover; every field narrows. */
export interface AuditFilter {
  /** Events at or after this time. */
  since?: Date;
  /** Events before this time. */
  until?: Date;
  keyId?: string;
  model?: string;
  /** `ok`: the request succeeded; `error`: it did not (refused, failed, blocked). */
  status?: 'ok' | 'error';
  action?: string;
}

/** The last event of one chain, as its writer recorded it. */
export interface ChainHead {
  chainId: string;
  seq: number;
  hash: string;
}

/** Requests, tokens, errors and blocks of one key and model on one UTC day. */
export interface StatsRow {
  /** `YYYY-MM-DD`, UTC. */
  day: string;
  keyId: string | null;
  model: string | null;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Requests that did not succeed, blocks included. */
  errors: number;
  /** Requests the content guard blocked. */
  blocks: number;
}

/** What a prune removed. */
export interface PruneResult {
  /** Events older than this were removed. */
  cutoff: string;
  deleted: number;
  /** Chains that got a `prune` checkpoint. */
  chains: number;
}

/**
 * Reading (and pruning) a stored audit trail, whichever database holds it. `verify`, the CLI
 * queries and retention use only this.
 */
export interface AuditTrail {
  readonly backend: 'sqlite' | 'postgres';
  /** Every chain with its recorded head, plus chains found only in the events (head null). */
  heads(): Promise<Array<ChainHead | { chainId: string; seq: null; hash: null }>>;
  /** Events of one chain after `afterSeq`, in sequence order, at most `limit`. */
  chainEvents(chainId: string, afterSeq: number, limit: number): Promise<StoredAuditEvent[]>;
  /** Checkpoints of one chain in sequence order. */
  checkpoints(chainId: string): Promise<Checkpoint[]>;
  /** Matching events, oldest first, read a page at a time; at most `limit` when given. */
  events(filter: AuditFilter, options?: { limit?: number }): AsyncGenerator<ChainedAuditEvent>;
  /** The newest `n` matching events, oldest first. */
  latest(filter: AuditFilter, n: number): Promise<ChainedAuditEvent[]>;
  /** Totals per UTC day, key and model. */
  stats(filter: AuditFilter): Promise<StatsRow[]>;
  /**
   * Removes events older than `before`. Each chain cut gets a `prune` checkpoint at its newest
   * removed event, signed with `hmacKey`, so what remains still verifies.
   */
  prune(before: Date, hmacKey: string | null): Promise<PruneResult>;
  close(): Promise<void>;
}

/** How one SQL dialect spells parameters and values. */
export interface Dialect {
  param(index: number): string;
  bool(value: boolean): unknown;
}

/** The WHERE clause of a filter (or an empty string) and its parameters, from `first` on. */
export function whereOf(
  filter: AuditFilter,
  dialect: Dialect,
  first = 1,
): { sql: string; params: unknown[] } {
  const terms: string[] = [];
  const params: unknown[] = [];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    terms.push(sql(dialect.param(first + params.length - 1)));
  };
  if (filter.since) add((p) => `time >= ${p}`, filter.since.toISOString());
  if (filter.until) add((p) => `time < ${p}`, filter.until.toISOString());
  if (filter.keyId !== undefined) add((p) => `key_id = ${p}`, filter.keyId);
  if (filter.model !== undefined) add((p) => `model = ${p}`, filter.model);
  if (filter.action !== undefined) add((p) => `action = ${p}`, filter.action);
  if (filter.status !== undefined)
    add((p) => `success = ${p}`, dialect.bool(filter.status === 'ok'));
  return { sql: terms.length ? `WHERE ${terms.join(' AND ')}` : '', params };
}

/** Rows per page when a trail is read in full (export, verify). */
export const PAGE_SIZE = 2000;
