/**
 * The content guard: finds secrets and personal data in text, redacts them (whole or streamed),
 * decides what a policy says to do, and sanitises model output for display. One rule set serves
 * the gateway and any scanner of files or logs.
 *
 * @example
 * import { decide, redactText, scanText } from './guard/index.js';
 * const findings = scanText(prompt);
 * const { action } = decide(findings, { categories: { secret: 'block' }, default: 'redact' });
 * if (action === 'redact') prompt = redactText(prompt).text;
 */

export {
  createVirtualKeyDetector,
  isVirtualKeyShape,
  VIRTUAL_KEY_PATTERN,
} from './detectors/virtual-key.js';
export { actionFor, type Decision, decide, type GuardAction, type GuardPolicy } from './policy.js';
export { BUILT_IN } from './rules.js';
export {
  createOutputSanitizer,
  SANITIZE_HOLD_BACK,
  type SanitizeOptions,
  type StreamSanitizer,
  sanitizeOutput,
  sanitizeStream,
} from './sanitize.js';
export {
  applyRedactions,
  createScanner,
  placeholder,
  type RedactResult,
  redactText,
  type Scanner,
  scanText,
} from './scanner.js';
export {
  createStreamRedactor,
  redactStream,
  type StreamRedactor,
  type StreamRedactorBehaviour,
} from './stream.js';
export type {
  Category,
  CustomPattern,
  CustomWordList,
  Finding,
  ScanOptions,
  Severity,
} from './types.js';
