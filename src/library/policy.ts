import type { z } from 'zod';
import { ConfigError } from '../config/errors.js';
import { type Profile, profileSchema } from '../config/schema.js';
import { type EffectivePolicy, effectivePolicy } from '../policy/policy.js';

/**
 * A policy as a caller writes it: the fields of an environment profile, each optional and
 * defaulting as in the configuration file (`models`, `maxTokens`, `maxTokensAction`,
 * `maxMessages`, `maxMessageChars`, `allowUnknownFields`, ...). A profile taken from a loaded
 * configuration (`config.profiles.production`) fits as it is.
 */
export type PolicyInput = z.input<typeof profileSchema> | Profile | EffectivePolicy;

const parsed = new WeakMap<object, EffectivePolicy>();
let defaults: EffectivePolicy | null = null;

/**
 * The policy in force for `input`: the profile's defaults when absent. Each input object is
 * parsed once and remembered, so passing the same object on every request costs a lookup.
 * Throws ConfigError listing every invalid field, as the configuration loader does.
 */
export function resolvePolicy(input?: PolicyInput): EffectivePolicy {
  if (input === undefined) {
    defaults ??= toEffective(profileSchema.parse({}));
    return defaults;
  }
  if ('keyModels' in input) return input as EffectivePolicy;
  const known = parsed.get(input);
  if (known) return known;
  const result = profileSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => ({
        path: ['policy', ...issue.path].join('.'),
        message: issue.message,
      })),
    );
  }
  const policy = toEffective(result.data);
  parsed.set(input, policy);
  return policy;
}

/** A profile as a policy with no key narrowing it, as for a key created without limits. */
export function toEffective(profile: Profile): EffectivePolicy {
  return effectivePolicy(profile, { models: null, maxTokens: null, limits: null });
}
