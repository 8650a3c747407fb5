import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { configSchema } from '../../src/config/schema.js';
import { createLogger, type Logger } from '../../src/logging.js';
import { canaryUpstreamKey } from '../support/canary.js';

/** Retries kept short so throttling tests run fast. */
export const FAST_RETRY = { attempts: 2, delayMs: 1 };

/** A logger whose JSON lines are kept in memory, for assertions and canary checks. */
export function memoryLogger(): {
  logger: Logger;
  lines: string[];
  events(): Array<Record<string, unknown>>;
} {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(line);
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  return {
    logger,
    lines,
    events: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A fresh key of Mistral's shape (32 letters and digits). */
export const newKey = canaryUpstreamKey;

/** A read-environment function over a fixed set of variables. */
export function envOf(vars: Record<string, string | undefined>) {
  return async () => ({ ...vars });
}

/** A parsed configuration with the given `upstreamKey` section and environments. */
export function configWith(
  upstreamKey: Record<string, unknown> = {},
  environments: string[] = ['production'],
  baseUrl = 'http://127.0.0.1:9',
) {
  return configSchema.parse({
    environment: environments[0],
    environments,
    // A data directory that does not exist: no key-age file is written, and never into the
    // checkout's own `./.mistral-guard` from a quick start.
    dataDir: join(tmpdir(), 'mg-secrets-no-data-dir'),
    upstream: { baseUrl },
    upstreamKey: { verify: false, ...upstreamKey },
  });
}
