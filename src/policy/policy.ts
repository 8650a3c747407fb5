import type { Profile, ProfileLimits } from '../config/schema.js';
import { actionFor, type Category, type GuardAction, type GuardPolicy } from '../guard/index.js';
import type { KeyGuard, KeyGuardRules, KeyLimits } from '../keys/types.js';

/** What a virtual key narrows; null fields take the profile's value. */
export interface KeyPolicyInput {
  models: string[] | null;
  maxTokens: number | null;
  /**
   * The key's own limits; a null or absent field, or null or absent as a whole, takes the
   * profile's. Optional so that callers holding only the model policy of a key still fit.
   */
  limits?: KeyLimits | null;
  /** The key's own guard rules; null or absent leaves the profile's guard as it is. */
  guard?: KeyGuard | null;
}

/**
 * The policy in force for one request: the profile narrowed by the key. `limits` holds the
 * limits the key is held to, each the lower of the profile's and the key's (null: no limit).
 */
export interface EffectivePolicy extends Profile {
  /** The key's own allow-list, checked after the profile's. Null means the profile's alone. */
  keyModels: string[] | null;
  /**
   * The key's own guard rules, applied over the profile's compiled guard per request (see
   * `effectiveGuardPolicy`); null when the key has none.
   */
  keyGuard: KeyGuard | null;
}

/** The lower of two limits, where null (or an absent key limit) means no limit. */
function lower(profile: number | null, key: number | null | undefined): number | null {
  if (key === null || key === undefined) return profile;
  return profile === null ? key : Math.min(profile, key);
}

/**
 * The limits a key is held to: per field, the lower of its profile's and its own, so a key
 * can only narrow. The profile's outage behaviour is kept.
 *
 * @example
 * effectiveLimits({ rpm: 600, tpm: null, ...rest }, { rpm: 1000, tpm: 5000 });
 * // { rpm: 600, tpm: 5000, ...rest }
 */
export function effectiveLimits(
  profile: ProfileLimits,
  key: KeyLimits | null | undefined,
): ProfileLimits {
  return {
    rpm: lower(profile.rpm, key?.rpm),
    tpm: lower(profile.tpm, key?.tpm),
    concurrency: lower(profile.concurrency, key?.concurrency),
    dailyTokens: lower(profile.dailyTokens, key?.dailyTokens),
    monthlyTokens: lower(profile.monthlyTokens, key?.monthlyTokens),
    onOutage: profile.onOutage,
  };
}

/**
 * Combines an environment profile with a key's own limits. A key can only narrow: its model
 * list is checked in addition to the profile's, and its token cap and each of its rate and
 * budget limits is the lower of the two.
 *
 * @example
 * const policy = effectivePolicy(config.profiles[key.environment], key);
 * limiter.reserve({ id: key.id, environment: key.environment, limits: policy.limits }, tokens);
 */
export function effectivePolicy(profile: Profile, key: KeyPolicyInput): EffectivePolicy {
  const maxTokens =
    key.maxTokens === null ? profile.maxTokens : Math.min(profile.maxTokens, key.maxTokens);
  const limits = effectiveLimits(profile.limits, key.limits);
  return { ...profile, maxTokens, limits, keyModels: key.models, keyGuard: key.guard ?? null };
}

const STRENGTH: Record<GuardAction, number> = { allow: 0, flag: 1, redact: 2, block: 3 };

/** The stricter of a profile's action and a key's; a key without an action keeps the profile's. */
function stricter(profile: GuardAction, key: GuardAction | undefined): GuardAction {
  return key !== undefined && STRENGTH[key] > STRENGTH[profile] ? key : profile;
}

/** True when `rules` could change anything: some category or detector is named. */
export function hasGuardRules(rules: KeyGuardRules | null | undefined): rules is KeyGuardRules {
  if (!rules) return false;
  return Object.keys(rules.categories ?? {}).length + Object.keys(rules.detectors ?? {}).length > 0;
}

/**
 * The guard policy of one direction for one key: per detector, the stricter of the profile's
 * action and the key's (its detector rule, else its category rule), in the order allow < flag
 * < redact < block. A key rule looser than its profile is ignored, so a key can only narrow.
 *
 * Every detector of the scanner gets an explicit entry: a key's category rule must reach a
 * detector the profile names on its own (`email: allow` under a key's `pii: block` becomes
 * `block`), and a key's detector rule must not undercut the profile's category rule.
 *
 * @example
 * effectiveGuardPolicy(
 *   { categories: { secret: 'block', pii: 'redact' } },
 *   { categories: { pii: 'block' } },
 *   [{ id: 'email', category: 'pii' }],
 * ); // { categories: { secret: 'block', pii: 'block' }, detectors: { email: 'block' } }
 */
export function effectiveGuardPolicy(
  profile: GuardPolicy,
  key: KeyGuardRules | null | undefined,
  detectors: ReadonlyArray<{ id: string; category: Category }>,
): GuardPolicy {
  if (!hasGuardRules(key)) return profile;
  const fallback = profile.default ?? 'flag';
  const categories: Record<Category, GuardAction> = {
    secret: stricter(profile.categories?.secret ?? fallback, key.categories?.secret),
    pii: stricter(profile.categories?.pii ?? fallback, key.categories?.pii),
  };
  const byDetector: Record<string, GuardAction> = {};
  for (const d of detectors) {
    const own = key.detectors?.[d.id] ?? key.categories?.[d.category];
    byDetector[d.id] = stricter(actionFor({ detector: d.id, category: d.category }, profile), own);
  }
  return {
    ...(profile.default && { default: profile.default }),
    categories,
    detectors: byDetector,
  };
}

function matches(pattern: string, model: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return model.startsWith(pattern.slice(0, -1));
  return pattern === model;
}

function listAllows(list: string[], model: string): boolean {
  for (const pattern of list) if (matches(pattern, model)) return true;
  return false;
}

/** True when both the profile and the key allow `model`. */
export function modelAllowed(policy: EffectivePolicy, model: string): boolean {
  if (!listAllows(policy.models, model)) return false;
  return policy.keyModels === null || listAllows(policy.keyModels, model);
}

/** True when the policy allows every model, so requests without a model name can pass. */
export function allowsAnyModel(policy: EffectivePolicy): boolean {
  const anyInProfile = policy.models.includes('*');
  return anyInProfile && (policy.keyModels === null || policy.keyModels.includes('*'));
}
