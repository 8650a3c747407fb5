import type { Profile } from '../config/schema.js';

/** What a virtual key narrows; null fields take the profile's value. */
export interface KeyPolicyInput {
  models: string[] | null;
  maxTokens: number | null;
}

/** The policy in force for one request: the profile narrowed by the key. */
export interface EffectivePolicy extends Profile {
  /** The key's own allow-list, checked after the profile's. Null means the profile's alone. */
  keyModels: string[] | null;
}

/**
 * Combines an environment profile with a key's own limits. A key can only narrow: its model
 * list is checked in addition to the profile's, and its token cap is the lower of the two.
 */
export function effectivePolicy(profile: Profile, key: KeyPolicyInput): EffectivePolicy {
  const maxTokens =
    key.maxTokens === null ? profile.maxTokens : Math.min(profile.maxTokens, key.maxTokens);
  return { ...profile, maxTokens, keyModels: key.models };
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
