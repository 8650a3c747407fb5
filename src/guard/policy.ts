import type { Category, Finding } from './types.js';

/** What to do with a request or answer that holds findings. */
export type GuardAction = 'block' | 'redact' | 'flag' | 'allow';

/**
 * Actions per detector id, then per category, then a default. The most specific rule that names
 * a finding applies to it.
 *
 * @example { default: 'flag', categories: { secret: 'block' }, detectors: { email: 'redact' } }
 */
export interface GuardPolicy {
  /** Action for findings no other rule names; `flag` when omitted. */
  default?: GuardAction;
  categories?: Partial<Record<Category, GuardAction>>;
  detectors?: Record<string, GuardAction>;
}

/** The outcome for a set of findings: the strongest action, and counts for logs and audit. */
export interface Decision {
  action: GuardAction;
  /** Findings per detector id. */
  byDetector: Record<string, number>;
  /** Findings per category. */
  categories: Record<Category, number>;
}

const STRENGTH: Record<GuardAction, number> = { allow: 0, flag: 1, redact: 2, block: 3 };

/** The action `policy` gives one finding. */
export function actionFor(
  finding: Pick<Finding, 'detector' | 'category'>,
  policy: GuardPolicy,
): GuardAction {
  return (
    policy.detectors?.[finding.detector] ??
    policy.categories?.[finding.category] ??
    policy.default ??
    'flag'
  );
}

/**
 * Decides what to do with `findings`: block beats redact beats flag beats allow. No findings
 * means `allow`.
 *
 * @example
 * decide(scanText(prompt), { categories: { secret: 'block' }, default: 'redact' }).action;
 */
export function decide(findings: readonly Finding[], policy: GuardPolicy): Decision {
  let action: GuardAction = 'allow';
  const byDetector: Record<string, number> = {};
  const categories: Record<Category, number> = { secret: 0, pii: 0 };
  for (const f of findings) {
    byDetector[f.detector] = (byDetector[f.detector] ?? 0) + 1;
    categories[f.category]++;
    const a = actionFor(f, policy);
    if (STRENGTH[a] > STRENGTH[action]) action = a;
  }
  return { action, byDetector, categories };
}
