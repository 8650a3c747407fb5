import { isWellFormedVirtualKey, VIRTUAL_KEY_PREFIX } from '../keys/format.js';
import type { KeyLimits } from '../keys/types.js';
import type { CliContext } from './context.js';
import { UsageError } from './output.js';

/**
 * Parsers of the `keys` flags. Each throws a UsageError naming the flag and what it expects;
 * none repeats the value, which may be a secret pasted into the wrong place.
 */

type Config = CliContext['config'];

const KEY_ID = /^key_[0-9A-Za-z]{16}$/;
// `*` alone, or a model name with an optional trailing `*` matching a prefix, as in profiles.
const MODEL_PATTERN = /^(?:\*|[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}\*?)$/;
const DURATION = /^([1-9][0-9]{0,5})([hd])$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const UTC_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?Z$/;
const POSITIVE = /^[1-9][0-9]*$/;
const HOUR_MS = 3_600_000;
const MAX_EXPIRY_MS = 100 * 365 * 24 * HOUR_MS;
// C0 and C1 controls: a name printed raw could carry terminal escape sequences.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * The value `keys update` takes to clear a field back to the profile's. Not `none`: a cleared
 * limit is not "no limit" but whatever the profile sets, and the word should say so.
 */
export const PROFILE_DEFAULT = 'default';

/** The limit flags, as commander names them, with the key limit each one sets. */
export const LIMIT_FLAGS = [
  ['rpm', '--rpm', 'requests per minute'],
  ['tpm', '--tpm', 'tokens per minute (prompt and completion)'],
  ['concurrency', '--concurrency', 'requests in flight at once'],
  ['dailyTokens', '--daily-tokens', 'tokens per UTC day'],
  ['monthlyTokens', '--monthly-tokens', 'tokens per UTC month'],
] as const;

/** The limit flags as commander hands them over. */
export type LimitFlagValues = { [K in (typeof LIMIT_FLAGS)[number][0]]?: string };

/** `value` as a positive safe integer, or a UsageError naming `flag`. */
function positive(flag: string, value: string, clearable: boolean): number {
  const n = Number(value);
  if (!POSITIVE.test(value) || !Number.isSafeInteger(n)) {
    const clear = clearable ? `, or "${PROFILE_DEFAULT}" for the profile's` : '';
    throw new UsageError(`${flag} must be a positive integer${clear}`);
  }
  return n;
}

/** A name for people: 1 to 100 printable characters. */
export function parseName(value: string): string {
  const name = value.trim();
  if (name.length === 0 || name.length > 100 || CONTROL.test(name)) {
    throw new UsageError('--name must be 1 to 100 characters, without control characters');
  }
  return name;
}

/** The environment of a new key: the flag, else the configured one; it must have a profile. */
export function parseEnvironment(value: string | undefined, config: Config): string {
  const environment = value ?? config.environment;
  const known = Object.keys(config.profiles ?? {});
  if (known.length > 0 && !known.includes(environment)) {
    throw new UsageError(`--env must be one of the configured environments: ${known.join(', ')}`);
  }
  return environment;
}

/** A comma-separated model list; with `clearable`, `default` gives null (the profile's list). */
export function parseModels(value: string | undefined, clearable = false): string[] | null {
  if (value === undefined) return null;
  if (clearable && value.trim() === PROFILE_DEFAULT) return null;
  const models = [...new Set(value.split(',').map((m) => m.trim()))].filter((m) => m !== '');
  if (models.length === 0) throw new UsageError('--models must name at least one model');
  if (!models.every((m) => MODEL_PATTERN.test(m))) {
    throw new UsageError(
      '--models must be model names separated by commas (letters, digits and . _ : / -), ' +
        'each optionally ending in * to match a prefix (mistral-small-*), or * for any',
    );
  }
  return models;
}

/** `--max-tokens`; with `clearable`, `default` gives null (the profile's cap). */
export function parseMaxTokens(value: string | undefined, clearable = false): number | null {
  if (value === undefined) return null;
  if (clearable && value === PROFILE_DEFAULT) return null;
  return positive('--max-tokens', value, clearable);
}

/**
 * The limit flags given, as key limits. Flags not given stay absent; with `clearable` (for
 * `keys update`), `default` gives null, which clears the key's own limit.
 */
export function parseLimits(flags: LimitFlagValues, clearable = false): KeyLimits {
  const limits: KeyLimits = {};
  for (const [field, flag] of LIMIT_FLAGS) {
    const value = flags[field];
    if (value === undefined) continue;
    limits[field] =
      clearable && value === PROFILE_DEFAULT ? null : positive(flag, value, clearable);
  }
  return limits;
}

/** `--expires`: a duration from now or a UTC date, within 100 years; as ISO 8601. */
export function parseExpires(value: string | undefined, now: Date): string | null {
  if (value === undefined) return null;
  let at = Number.NaN;
  const duration = DURATION.exec(value);
  if (duration) {
    at = now.getTime() + Number(duration[1]) * (duration[2] === 'd' ? 24 : 1) * HOUR_MS;
  } else if (DATE.test(value) || UTC_TIME.test(value)) {
    at = Date.parse(DATE.test(value) ? `${value}T00:00:00Z` : value);
    // Date.parse rolls 2027-02-30 over to March; a date that does not survive the round trip
    // was not a real date.
    if (!Number.isNaN(at) && new Date(at).toISOString().slice(0, 10) !== value.slice(0, 10)) {
      at = Number.NaN;
    }
  }
  if (Number.isNaN(at) || at - now.getTime() > MAX_EXPIRY_MS) {
    throw new UsageError(
      '--expires must be a duration (12h, 30d) or a date within 100 years (2027-01-01, ' +
        '2027-01-01T12:00Z)',
    );
  }
  if (at <= now.getTime()) throw new UsageError('--expires must be in the future');
  return new Date(at).toISOString();
}

/** A key id argument. A pasted key is refused without being echoed back. */
export function parseKeyId(value: string): string {
  if (KEY_ID.test(value)) return value;
  if (value.startsWith(VIRTUAL_KEY_PREFIX) || isWellFormedVirtualKey(value)) {
    throw new UsageError('ID must be a key id (key_...), not the key itself; see `keys list`');
  }
  throw new UsageError('ID must be "key_" followed by 16 letters or digits; see `keys list`');
}

const GRACE = /^(0|[1-9][0-9]{0,6})([smhd]?)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: HOUR_MS, d: 24 * HOUR_MS };
const MAX_GRACE_MS = 365 * 24 * HOUR_MS;

/**
 * `--grace`: how long a rotated key keeps working, as a duration (30s, 15m, 24h, 7d) or 0 to
 * end it at once; in milliseconds. A bare number other than 0 is refused: seconds or hours?
 */
export function parseGrace(value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const match = GRACE.exec(value.trim());
  const amount = Number(match?.[1]);
  const unit = match?.[2] ?? '';
  const ms = amount * (UNIT_MS[unit] ?? 0);
  if (!match || (unit === '' && amount !== 0) || ms > MAX_GRACE_MS) {
    throw new UsageError('--grace must be 0 or a duration up to 365d (30s, 15m, 24h, 7d)');
  }
  return ms;
}
