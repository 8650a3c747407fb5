import { BUILT_IN, type ScanOptions } from '../guard/index.js';
import { isWellFormedVirtualKey } from '../keys/format.js';

/** Which guard detectors a scan runs. */
export interface RuleChoice {
  /** Also report personal data (emails, phone numbers, cards...); off by default. */
  pii?: boolean;
  /** Extra detector ids, such as `ip_address`. */
  enable?: string[];
  /** Detector ids to skip. */
  disable?: string[];
}

/**
 * The guard options a scan uses: the content guard's own rule set, limited to credentials unless
 * personal data is asked for (an email in a `package.json` is not a leak), with virtual keys
 * checked against their checksum so look-alikes in fixtures and docs stay quiet. The returned
 * object is reused for every file, so the rules compile once.
 *
 * @example
 * const options = scanRuleOptions({ disable: ['secret_assignment'] });
 * scanText(fileText, options);
 */
export function scanRuleOptions(choice: RuleChoice = {}): ScanOptions {
  const ids = BUILT_IN.filter((d) => !d.optIn && (choice.pii || d.category === 'secret')).map(
    (d) => d.id,
  );
  return {
    detectors: ids,
    enable: choice.enable ?? [],
    disable: choice.disable ?? [],
    virtualKeyValidator: isWellFormedVirtualKey,
  };
}
