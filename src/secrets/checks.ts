import type { UpstreamKeyConfig } from '../config/schema.js';
import type { Secret } from '../config/secret.js';
import { UpstreamKeyError } from './errors.js';
import { hasKeyShape } from './key-shape.js';

/** What a key must satisfy before an environment uses it. */
export interface KeyRules {
  shapeCheck: UpstreamKeyConfig['shapeCheck'];
  /** True when the environment's key must be its own. */
  mustBeSeparate(environment: string): boolean;
}

/** The rules the configuration sets. */
export function keyRulesOf(config: UpstreamKeyConfig): KeyRules {
  const { requireSeparateKeys: separate } = config;
  return {
    shapeCheck: config.shapeCheck,
    mustBeSeparate: (environment) =>
      separate === true || (Array.isArray(separate) && separate.includes(environment)),
  };
}

/** A key offered to an environment, with where it was found. */
export interface Candidate {
  environment: string;
  key: Secret;
  /** False when it came from the variable every environment shares. */
  own: boolean;
  /** The keys other environments use now. */
  others: ReadonlyArray<readonly [string, Secret]>;
}

/**
 * Whether an environment may use a key: its shape (32 letters and digits) and, when its key
 * must be separate, that it is bound to this environment and no other environment uses it.
 * Returns the refusal, and a warning for a shape the rules only warn about.
 *
 * @example
 * const { error } = checkCandidate({ environment: 'production', key, own: true, others }, rules);
 * if (error) throw error; // key_malformed or key_shared
 */
export function checkCandidate(
  candidate: Candidate,
  rules: KeyRules,
): { error: UpstreamKeyError | null; warning: string | null } {
  const { environment, key } = candidate;
  let warning: string | null = null;
  if (!hasKeyShape(key)) {
    const what = `the key of "${environment}" from ${key.source} is not 32 letters and digits`;
    if (rules.shapeCheck === 'refuse') {
      const hint = '; check the variable, file or field it is read from';
      return { error: new UpstreamKeyError('key_malformed', `${what}${hint}`), warning };
    }
    warning = `${what}; it is used anyway (upstreamKey.shapeCheck: warn)`;
  }
  if (!rules.mustBeSeparate(environment)) return { error: null, warning };

  if (!candidate.own) {
    const specific = `MISTRAL_API_KEY_${environment.toUpperCase().replace(/-/g, '_')}`;
    const message =
      `"${environment}" must have an upstream key of its own (upstreamKey.requireSeparateKeys), ` +
      `but it would use ${key.source}, which every environment shares: set ${specific} or ` +
      `configure upstreamKey.sources.${environment}`;
    return { error: new UpstreamKeyError('key_shared', message), warning };
  }
  const sharing = candidate.others
    .filter(([name, other]) => name !== environment && other.reveal() === key.reveal())
    .map(([name]) => `"${name}"`);
  if (sharing.length) {
    const message =
      `"${environment}" must have an upstream key of its own (upstreamKey.requireSeparateKeys), ` +
      `but its key from ${key.source} is also the key of ${sharing.join(', ')}`;
    return { error: new UpstreamKeyError('key_shared', message), warning };
  }
  return { error: null, warning };
}
