import type { Secret } from '../config/secret.js';
import { UpstreamKeyError } from './errors.js';

/** The kinds of place an upstream key can be kept. */
export type KeySourceKind = 'env' | 'file' | 'aws' | 'gcp' | 'vault';

/** The environment variables as a source sees them, read again at each load. */
export type Environment = Record<string, string | undefined>;

/** A key as a source returned it. */
export interface LoadedKey {
  /** The key; its `source` names exactly where it was found, e.g. `MISTRAL_API_KEY_PRODUCTION`. */
  key: Secret;
  /** The version the source reported, when it keeps versions; safe to show. */
  version: string | null;
  /** False when the key came from the fallback every environment shares (`MISTRAL_API_KEY`). */
  own: boolean;
  /** What an operator should fix, such as a key file that others can read. */
  warnings: string[];
}

/**
 * One place an environment's key is kept. `location` says where, safely: a variable or file
 * name, a secret's id and field, never the value or a credential.
 */
export interface KeySource {
  readonly kind: KeySourceKind;
  readonly location: string;
  /** Reads the key now. Throws UpstreamKeyError. */
  load(): Promise<LoadedKey>;
  /** Stores a new key as the source's current value; absent when the source is read-only. */
  write?(key: Secret): Promise<{ version: string | null }>;
}

/**
 * The key inside a secret's text: the whole text, trimmed, or one field when the secret is a
 * JSON object (as the AWS console stores key/value secrets). A parse error is reported without
 * its message, which quotes the text.
 */
export function keyFromText(text: string, field: string | undefined, where: string): string {
  if (field === undefined) return nonEmpty(text.trim(), where);
  const value = jsonObjectOf(text, where)[field];
  if (value === undefined) {
    throw new UpstreamKeyError('source_not_found', `${where} has no field "${field}"`);
  }
  if (typeof value !== 'string') {
    throw new UpstreamKeyError('source_bad_value', `field "${field}" of ${where} is not a string`);
  }
  return nonEmpty(value.trim(), where);
}

/** The secret's text with `field` set to `key`, other fields kept; just `key` without a field. */
export function textWithKey(current: string | null, field: string | undefined, key: string) {
  if (field === undefined) return key;
  const fields = current === null ? {} : jsonObjectOf(current, 'the current secret');
  return JSON.stringify({ ...fields, [field]: key });
}

function jsonObjectOf(text: string, where: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UpstreamKeyError('source_bad_value', `${where} is not JSON, so it has no fields`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UpstreamKeyError('source_bad_value', `${where} is not a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

function nonEmpty(value: string, where: string): string {
  if (!value) throw new UpstreamKeyError('source_bad_value', `${where} is empty`);
  return value;
}
