import type { Command } from 'commander';
import { type Config, loadConfig } from '../config/load.js';

/** What every subcommand needs: the resolved configuration. */
export interface CliContext {
  config: Config;
}

/** Global flags shared by every subcommand. */
export interface GlobalFlags {
  config?: string;
  dataDir?: string;
  env?: string;
}

/**
 * Loads the configuration with the global flags of the program that `command` belongs to.
 * Throws ConfigError, which the entry point prints and turns into exit code 2.
 */
export async function cliContext(
  command: Command,
  extra: { requireUpstreamKey?: boolean; flags?: Record<string, unknown> } = {},
): Promise<CliContext> {
  const flags = command.optsWithGlobals() as GlobalFlags;
  const config = await loadConfig({
    configPath: flags.config,
    flags: { dataDir: flags.dataDir, environment: flags.env, ...extra.flags },
    requireUpstreamKey: extra.requireUpstreamKey ?? false,
  });
  return { config };
}
