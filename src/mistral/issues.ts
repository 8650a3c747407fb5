/**
 * Turns zod's validation issues into the `{ path, message }` list a caller sees. Messages are
 * written here from the issue's shape (expected type, bounds, allowed values), never taken from
 * the input: a rejected value may be a secret, and error bodies end up in client logs.
 */
import type { z } from 'zod';
import type { FieldIssue } from '../errors.js';

/** The most issues reported for one request; the rest add nothing a caller can act on. */
export const MAX_ISSUES = 50;

/** Type names zod puts after "received" in its messages: the only part of them we reuse. */
const RECEIVED = /received (undefined|null|string|number|boolean|object|array|bigint|nan)$/;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Longest field name echoed in a path: an unknown key is caller input, so it is shortened. */
const MAX_KEY_CHARS = 64;

type Issue = z.core.$ZodIssue;
type PathKey = PropertyKey;

/**
 * Writes a path as `messages[2].content`: indexes in brackets, names joined by dots. Names that
 * are not plain identifiers are quoted, so a key holding dots or brackets cannot forge a path.
 */
export function formatPath(path: readonly PathKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') {
      out += `[${key}]`;
      continue;
    }
    let name = String(key);
    if (name.length > MAX_KEY_CHARS) name = `${name.slice(0, MAX_KEY_CHARS)}...`;
    if (IDENTIFIER.test(name)) out += out ? `.${name}` : name;
    else out += `[${JSON.stringify(name)}]`;
  }
  return out;
}

/**
 * Every issue of a failed parse as field issues: deduplicated, in order, at most `MAX_ISSUES`.
 * An unknown field is reported at its own path (`messages[0].name`), one issue per field.
 */
export function formatIssues(error: z.ZodError): FieldIssue[] {
  const out: FieldIssue[] = [];
  const seen = new Set<string>();
  const add = (path: readonly PathKey[], message: string): void => {
    const text = formatPath(path);
    const id = `${text}\u0000${message}`;
    if (out.length >= MAX_ISSUES || seen.has(id)) return;
    seen.add(id);
    out.push({ path: text, message });
  };
  for (const issue of error.issues) collect(issue, [], add);
  return out;
}

// A field name is the caller's text: echoed only when it reads like a field name. A long or
// digit-heavy one (a key pasted as a property name) is not repeated back.
const FIELD_LIKE = /^[A-Za-z_][A-Za-z0-9_]{0,39}$/;

function echoable(key: PathKey): PathKey {
  if (typeof key !== 'string') return key;
  const digits = key.replace(/\D/g, '').length;
  return FIELD_LIKE.test(key) && digits < 4 ? key : '<unknown field>';
}

function collect(
  issue: Issue,
  prefix: readonly PathKey[],
  add: (path: readonly PathKey[], message: string) => void,
): void {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    for (const key of issue.keys) add([...path, echoable(key)], 'Unknown field.');
    return;
  }
  if (issue.code === 'invalid_union') {
    collectUnion(issue, path, add);
    return;
  }
  add(path, describe(issue));
}

/**
 * A union failure is reported at the branch the caller evidently meant: the only branch that
 * failed below its root (an array whose item is wrong, say), since a root type mismatch just
 * means the value is of another branch's type. Otherwise the union's own types are listed.
 */
function collectUnion(
  issue: z.core.$ZodIssueInvalidUnion,
  path: readonly PathKey[],
  add: (path: readonly PathKey[], message: string) => void,
): void {
  if (issue.discriminator !== undefined) {
    const allowed = 'options' in issue ? (issue.options ?? []) : [];
    const options = allowed.map((value) => JSON.stringify(value)).join(', ');
    add(path, options ? `Missing or unknown value: expected one of ${options}.` : 'Invalid value.');
    return;
  }
  const branches = issue.errors ?? [];
  const deep = branches.filter((branch) => !branch.every((i) => isRootMismatch(i)));
  if (deep.length === 1) {
    for (const inner of deep[0]!) collect(inner, path, add);
    return;
  }
  const expected = new Set<string>();
  for (const branch of branches) {
    for (const inner of branch) if (isRootMismatch(inner)) expected.add(expectedOf(inner));
  }
  add(path, expected.size ? `Expected ${[...expected].join(' or ')}.` : 'Invalid value.');
}

function isRootMismatch(issue: Issue): boolean {
  return (
    issue.path.length === 0 &&
    (issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'custom')
  );
}

function expectedOf(issue: Issue): string {
  if (issue.code === 'invalid_type') return issue.expected;
  if (issue.code === 'invalid_value')
    return issue.values.map((v) => JSON.stringify(v)).join(' or ');
  return 'object';
}

function describe(issue: Issue): string {
  switch (issue.code) {
    case 'invalid_type': {
      const received = RECEIVED.exec(issue.message)?.[1];
      if (received === 'undefined') return `Required: expected ${issue.expected}.`;
      return received
        ? `Expected ${issue.expected}, received ${received}.`
        : `Expected ${issue.expected}.`;
    }
    case 'invalid_value':
      return `Expected ${issue.values.map((v) => JSON.stringify(v)).join(', ')}.`;
    case 'too_big':
      return `Too ${issue.origin === 'number' ? 'large' : 'long'}: at most ${bound(issue)}.`;
    case 'too_small':
      return `Too ${issue.origin === 'number' ? 'small' : 'short'}: at least ${bound(issue)}.`;
    case 'invalid_format':
      return `Invalid ${issue.format}.`;
    case 'not_multiple_of':
      return `Must be a multiple of ${String(issue.divisor)}.`;
    case 'custom':
      // Our own custom checks carry fixed messages that never include the input.
      return issue.message;
    default:
      return 'Invalid value.';
  }
}

function bound(issue: z.core.$ZodIssueTooBig | z.core.$ZodIssueTooSmall): string {
  const limit = 'maximum' in issue ? issue.maximum : issue.minimum;
  const unit = issue.origin === 'string' ? ' characters' : issue.origin === 'array' ? ' items' : '';
  const strict = issue.inclusive === false ? ' (exclusive)' : '';
  return `${String(limit)}${unit}${strict}`;
}
