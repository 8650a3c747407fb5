import type { ProfileLimits } from '../config/schema.js';
import { type KeyStatus, keyStatus } from '../keys/status.js';
import { KEY_LIMIT_NAMES, type StoredKeyLimits, type VirtualKeyRecord } from '../keys/types.js';
import { effectiveLimits } from '../policy/policy.js';
import type { CliContext } from './context.js';
import { out } from './output.js';

type Config = CliContext['config'];
type LimitField = (typeof KEY_LIMIT_NAMES)[number];

// C0 and C1 controls: a name printed raw could carry terminal escape sequences.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

/** What a key looks like to people: every field except the hash, plus its status now. */
export interface KeyView {
  id: string;
  name: string;
  environment: string;
  status: KeyStatus;
  models: string[] | null;
  maxTokens: number | null;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  rotatedAt: string | null;
  replacedBy: string | null;
  graceUntil: string | null;
  /** The key's own limits; null fields take the profile's. */
  limits: StoredKeyLimits;
  /**
   * The limits the key is held to: per field the lower of its own and its profile's, null
   * meaning none. Null as a whole when this configuration has no profile for the environment.
   */
  effectiveLimits: StoredKeyLimits | null;
  /** The key's own guard rules, which can only tighten its profile's; null for none. */
  guard: VirtualKeyRecord['guard'];
  metadata: Record<string, string>;
}

function limitsOnly(limits: ProfileLimits): StoredKeyLimits {
  const { onOutage: _, ...values } = limits;
  return values;
}

/**
 * The view of `record` at `now`. Fields are copied one by one, not spread: a field added to
 * the record later (a second hash, a key prefix) stays out of CLI output until someone decides
 * it is safe to show.
 */
export function view(record: VirtualKeyRecord, now: Date, config: Config): KeyView {
  const profile = config.profiles[record.environment];
  return {
    id: record.id,
    name: record.name,
    environment: record.environment,
    status: keyStatus(record, now.getTime()),
    models: record.models,
    maxTokens: record.maxTokens,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    revokedAt: record.revokedAt,
    rotatedAt: record.rotatedAt,
    replacedBy: record.replacedBy,
    graceUntil: record.graceUntil,
    limits: { ...record.limits },
    effectiveLimits: profile ? limitsOnly(effectiveLimits(profile.limits, record.limits)) : null,
    guard: record.guard ?? null,
    metadata: record.metadata,
  };
}

/** `text` with control characters replaced, safe to print on a terminal. */
export function printable(text: string): string {
  return text.replace(CONTROLS, '?');
}

const LIMIT_LABELS: Record<LimitField, string> = {
  rpm: 'rpm',
  tpm: 'tpm',
  concurrency: 'concurrency',
  dailyTokens: 'daily tokens',
  monthlyTokens: 'monthly tokens',
};

/** One limit for people: the value in force and where it comes from. */
function limitText(v: KeyView, field: LimitField): string {
  const own = v.limits[field];
  if (v.effectiveLimits === null) {
    return own === null ? "the profile's (no profile configured)" : `${own} (key)`;
  }
  const inForce = v.effectiveLimits[field];
  if (inForce === null) return 'none';
  if (own === null) return `${inForce} (profile)`;
  if (own === inForce) return `${inForce} (key)`;
  return `${inForce} (profile; the key's ${own} is higher)`;
}

/** Prints one key as labelled lines. */
export function printDetails(v: KeyView): void {
  const rows: Array<[string, string]> = [
    ['id', v.id],
    ['name', printable(v.name)],
    ['environment', v.environment],
    ['status', v.status],
    ['models', v.models ? v.models.join(', ') : "the profile's"],
    ['max tokens', v.maxTokens === null ? "the profile's" : String(v.maxTokens)],
    ...KEY_LIMIT_NAMES.map((field): [string, string] => [LIMIT_LABELS[field], limitText(v, field)]),
    ['created', v.createdAt],
    ['expires', v.expiresAt ?? 'never'],
  ];
  rows.push(['guard', v.guard ? guardText(v.guard) : "the profile's"]);
  if (v.revokedAt) rows.push(['revoked', v.revokedAt]);
  if (v.replacedBy) rows.push(['replaced by', v.replacedBy], ['grace until', v.graceUntil ?? '-']);
  for (const [label, value] of rows) out(`${`${label}:`.padEnd(16)} ${value}`);
}

/** A key's guard rules as the `--guard` flag writes them: `input.pii=block, output.email=redact`. */
function guardText(guard: NonNullable<KeyView['guard']>): string {
  const rules: string[] = [];
  for (const direction of ['input', 'output'] as const) {
    const own = guard[direction];
    if (!own) continue;
    for (const [target, action] of Object.entries({ ...own.categories, ...own.detectors })) {
      rules.push(`${direction}.${target}=${action}`);
    }
  }
  return rules.length ? rules.join(', ') : "the profile's";
}

/** The key's own limits in a table cell, e.g. `rpm 60, daily 100000`. */
function ownLimitsCell(limits: StoredKeyLimits): string {
  const set = KEY_LIMIT_NAMES.filter((field) => limits[field] !== null);
  if (set.length === 0) return "profile's";
  return set.map((field) => `${LIMIT_LABELS[field]} ${limits[field]}`).join(', ');
}

/** Prints keys as a table, one line each. */
export function printTable(views: KeyView[]): void {
  const rows = [
    ['ID', 'NAME', 'ENVIRONMENT', 'STATUS', 'CREATED', 'EXPIRES', 'LIMITS'],
    ...views.map((v) => [
      v.id,
      printable(v.name),
      v.environment,
      v.status,
      v.createdAt.slice(0, 16).replace('T', ' '),
      v.expiresAt ? v.expiresAt.slice(0, 16).replace('T', ' ') : 'never',
      ownLimitsCell(v.limits),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows) {
    out(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
  }
}

/**
 * Notes, for stderr, on the key's own limits and token cap that its profile overrides because
 * they are higher: a key can only narrow its profile, and whoever set them should know.
 */
export function narrowingNotes(record: VirtualKeyRecord, config: Config): string[] {
  const profile = config.profiles[record.environment];
  if (!profile) return [];
  const notes: string[] = [];
  if (record.maxTokens !== null && record.maxTokens > profile.maxTokens) {
    notes.push(`--max-tokens is above the ${record.environment} profile's ${profile.maxTokens}`);
  }
  for (const field of KEY_LIMIT_NAMES) {
    const own = record.limits[field];
    const cap = profile.limits[field];
    if (own !== null && cap !== null && own > cap) {
      const flag = `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      notes.push(`${flag} is above the ${record.environment} profile's ${cap}`);
    }
  }
  return notes.map((note) => `note: ${note}; the profile's limit applies.`);
}
