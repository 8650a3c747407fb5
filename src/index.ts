/**
 * mistral-guard as a library: the gateway's own pieces for in-process use. The guarded client,
 * the validators and the web middleware run the gateway's checks, content guard, limits and
 * audit with its configuration; `@mistralai/mistralai` is needed only by the guarded client.
 *
 * @example
 * import { redactText, scanText } from 'mistral-guard';
 * const findings = scanText('mail jane.doe@example.com');
 * const { text } = redactText('card 4111 1111 1111 1111'); // 'card [REDACTED:CARD]'
 */

export type { AuditEvent, AuditEventInput } from './audit/event.js';
export { openAuditLog } from './audit/sqlite-sink.js';
export { ConfigError, type ConfigProblem } from './config/errors.js';

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
export {
  createGuardedClient,
  type GuardedClientExtras,
  type GuardedClientOptions,
  type GuardedMistral,
} from './library/client.js';
export {
  type ExpressLikeRequest,
  type MistralGuardExpress,
  type MistralGuardExpressOptions,
  mistralGuardExpress,
  type NextFunction,
} from './library/express.js';
export { type MistralGuardFastifyOptions, mistralGuardFastify } from './library/fastify.js';
export {
  type GuardedBodies,
  type GuardedEndpoint,
  type GuardedRequest,
  guardedRequestOf,
  type MiddlewareHooks,
} from './library/middleware.js';
export type { PolicyInput } from './library/policy.js';
export type { AuditContext, AuditRecorderLike, GuardRuntimeOptions } from './library/runtime.js';
export { type SdkRequests, toSdkRequest } from './library/sdk-shape.js';
export {
  validateChatModerationRequest,
  validateChatRequest,
  validateEmbeddingRequest,
  validateFimRequest,
  validateModerationRequest,
} from './library/validate.js';
export type * from './library/wire.js';
