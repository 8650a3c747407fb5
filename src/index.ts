/**
 * mistral-guard as a library: the gateway's own pieces for in-process use.
 *
 * @example
 * import { redactText, scanText } from 'mistral-guard';
 * const findings = scanText('mail jane.doe@example.com');
 * const { text } = redactText('card 4111 1111 1111 1111'); // 'card [REDACTED:CARD]'
 */

export { type Config, type LoadConfigOptions, loadConfig } from './config/load.js';
export {
  ERROR_CODES,
  type ErrorCode,
  type FieldIssue,
  GuardError,
  isGuardError,
} from './errors.js';
export {
  actionFor,
  type Category,
  type CustomPattern,
  type CustomWordList,
  createOutputSanitizer,
  createScanner,
  createStreamRedactor,
  type Decision,
  decide,
  type Finding,
  type GuardAction,
  type GuardPolicy,
  type RedactResult,
  redactStream,
  redactText,
  type SanitizeOptions,
  type Scanner,
  type ScanOptions,
  type Severity,
  type StreamRedactor,
  type StreamSanitizer,
  sanitizeOutput,
  sanitizeStream,
  scanText,
} from './guard/index.js';
export { isWellFormedVirtualKey } from './keys/format.js';
