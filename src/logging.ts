import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths that are censored if they ever reach a log call. Request logging names the fields it
 * writes, so these are the second line of defence; they are fixed here, compiled once.
 */
const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  'headers["x-api-key"]',
  'key',
  'apiKey',
  'upstreamKey',
  'body',
  'prompt',
  'messages',
  'completion',
];

export interface LoggerOptions {
  level?: string;
  /** Where lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

/** The process logger: JSON lines, one event per line, with secret-bearing paths censored. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'mistral-guard' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}
