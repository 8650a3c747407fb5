import type { Profile, ProfileLimits } from '../config/schema.js';
import type { KeyLimits } from '../keys/types.js';

/** What a virtual key narrows; null fields take the profile's value. */
export interface KeyPolicyInput {
  models: string[] | null;
  maxTokens: number | null;
  /**
   * The key's own limits; a null or absent field, or null or absent as a whole, takes the
   * profile's. Optional so that callers holding only the model policy of a key still fit.
   */
  limits?: KeyLimits | null;
}

/**
 * The policy in force for one request: the profile narrowed by the key. `limits` holds the
 * limits the key is held to, each the lower of the profile's and the key's (null: no limit).
 */
export interface EffectivePolicy extends Profile {
  /** The key's own allow-list, checked after the profile's. Null means the profile's alone. */
  keyModels: string[] | null;
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
  return { ...profile, maxTokens, limits, keyModels: key.models };
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
