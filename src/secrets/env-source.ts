import { findUpstreamKey } from '../config/load.js';
import { UpstreamKeyError } from './errors.js';
import type { Environment, KeySource } from './source.js';

/** Options of `envKeySource`. */
export interface EnvKeySourceOptions {
  /** Read this variable alone, instead of `MISTRAL_API_KEY_<ENV>` then `MISTRAL_API_KEY`. */
  variable?: string | undefined;
  /** The variables now: the process environment over `.env`, read again at each load. */
  readEnv: () => Promise<Environment>;
}

/**
 * The key in the process environment. It cannot be written: a new value reaches a running
 * process only by a restart, or through `.env` when the variable is not set for real.
 *
 * @example
 * const source = envKeySource('production', { readEnv: () => readEnvironment(process.cwd()) });
 * const { key, own } = await source.load(); // own is false for the shared MISTRAL_API_KEY
 */
export function envKeySource(environment: string, options: EnvKeySourceOptions): KeySource {
  const { variable } = options;
  const names = findUpstreamKey(environment, {}, variable).lookedIn;
  return {
    kind: 'env',
    location: names.join(' or '),
    async load() {
      const { key } = findUpstreamKey(environment, await options.readEnv(), variable);
      if (!key) {
        const unset =
          names.length > 1 ? `neither ${names.join(' nor ')} is set` : `${names[0]} is not set`;
        throw new UpstreamKeyError('source_not_found', unset);
      }
      // The first name is the environment's own variable (or the one configured); the second
      // is the fallback every environment shares.
      return { key, version: null, own: key.source === names[0], warnings: [] };
    },
  };
}
