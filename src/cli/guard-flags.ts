import { BUILT_IN } from '../guard/rules.js';
import type { KeyGuard, KeyGuardRules } from '../keys/types.js';
import { PROFILE_DEFAULT } from './keys-flags.js';
import { UsageError } from './output.js';

const BUILT_IN_IDS = new Set(BUILT_IN.map((d) => d.id));

/**
 * The `--guard` flag of `keys create` and `keys update`: comma-separated rules
 * `<direction>.<target>=<action>`, where the direction is `input` or `output`, the target a
 * category (`secret`, `pii`) or a detector id (`email`, `payment_card`), and the action one of
 * block, redact, flag, allow. Errors name the flag and the rule's position, never its text.
 */

const RULE = /^(input|output)\.([a-z0-9_]{1,64})=(block|redact|flag|allow)$/;
const CATEGORIES = new Set(['secret', 'pii']);
const SYNTAX = 'direction.target=action, e.g. input.pii=block,output.email=redact';

/**
 * The key guard `--guard` asks for. With `clearable` (`keys update`), `default` clears the
 * key's rules back to its profile's guard and yields null.
 *
 * @example
 * parseGuard('input.pii=block,output.email=redact');
 * // { input: { categories: { pii: 'block' } }, output: { detectors: { email: 'redact' } } }
 */
export function parseGuard(value: string | undefined, clearable = false): KeyGuard | null {
  if (value === undefined) return null;
  if (clearable && value.trim() === PROFILE_DEFAULT) return null;
  const clear = clearable ? `, or "${PROFILE_DEFAULT}" to clear` : '';
  const parts = value.split(',').map((part) => part.trim());
  if (parts.every((part) => part === '')) {
    throw new UsageError(`--guard must give at least one rule: ${SYNTAX}${clear}`);
  }
  const guard: { input?: KeyGuardRules; output?: KeyGuardRules } = {};
  const seen = new Set<string>();
  parts.forEach((part, i) => {
    const match = RULE.exec(part);
    if (!match) {
      throw new UsageError(
        `--guard rule ${i + 1} is not of the form ${SYNTAX}; actions are block, redact, flag, allow${clear}`,
      );
    }
    const [, direction, target, action] = match as unknown as [
      string,
      'input' | 'output',
      string,
      'block' | 'redact' | 'flag' | 'allow',
    ];
    const where = `${direction}.${target}`;
    if (seen.has(where)) throw new UsageError(`--guard rule ${i + 1} repeats an earlier target`);
    seen.add(where);
    const rules: KeyGuardRules = guard[direction] ?? {};
    guard[direction] = rules;
    if (CATEGORIES.has(target)) {
      rules.categories = { ...rules.categories, [target as 'secret' | 'pii']: action };
    } else {
      if (!BUILT_IN_IDS.has(target)) {
        // A custom pattern's id is fine too, but a typo would silently match nothing.
        process.stderr.write(
          `warning: --guard rule ${i + 1} names a detector that is not built in; it applies only if the configuration defines it\n`,
        );
      }
      rules.detectors = { ...rules.detectors, [target]: action };
    }
  });
  return guard;
}
