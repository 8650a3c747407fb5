import { resolve } from 'node:path';
import type { KeySourceConfig } from '../config/schema.js';
import { awsKeySource } from './aws-source.js';
import { envKeySource } from './env-source.js';
import { fileKeySource } from './file-source.js';
import { gcpKeySource } from './gcp-source.js';
import type { RetryOptions } from './http.js';
import type { Environment, KeySource } from './source.js';
import { vaultKeySource } from './vault-source.js';

/** What every source needs besides its own configuration. */
export interface SourceDeps {
  /** The variables now: the process environment over `.env`. */
  readEnv: () => Promise<Environment>;
  /** Longest wait for one answer from a secret manager. */
  timeoutMs: number;
  /** Where a relative key file path starts; default the working directory. */
  cwd?: string;
  retry?: RetryOptions;
}

/**
 * The key source of one environment as configured; the process environment when the
 * configuration names none.
 *
 * @example
 * const source = createKeySource('production', config.upstreamKey.sources.production, {
 *   readEnv: () => readEnvironment(process.cwd()), timeoutMs: 5000 });
 */
export function createKeySource(
  environment: string,
  config: KeySourceConfig | undefined,
  deps: SourceDeps,
): KeySource {
  const common = { readEnv: deps.readEnv, timeoutMs: deps.timeoutMs, retry: deps.retry };
  switch (config?.source) {
    case undefined:
      return envKeySource(environment, { readEnv: deps.readEnv });
    case 'env':
      return envKeySource(environment, { readEnv: deps.readEnv, variable: config.variable });
    case 'file':
      return fileKeySource(resolve(deps.cwd ?? process.cwd(), config.path));
    case 'aws':
      return awsKeySource({ ...config, ...common });
    case 'gcp':
      return gcpKeySource({ ...config, ...common });
    case 'vault':
      return vaultKeySource({ ...config, ...common });
  }
}
