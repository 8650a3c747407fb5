#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isGuardError } from '../errors.js';
import { registerAuditCommands } from './audit.js';
import { registerKeysCommands } from './keys.js';
import { exitCodes, printError } from './output.js';
import { registerServeCommand } from './serve.js';

/** Builds the `mistral-guard` command line; exported so tests can drive it in-process. */
export function buildProgram(): Command {
  const program = new Command('mistral-guard')
    .description('A security layer for applications that call the Mistral AI API.')
    .version('0.1.0')
    .option('--config <path>', 'configuration file (default: ./mistral-guard.yaml when present)')
    .option('--data-dir <dir>', 'where the embedded store lives (default: ./.mistral-guard)')
    .option('--env <name>', 'environment (default: MISTRAL_GUARD_ENV, NODE_ENV, development)')
    .showHelpAfterError()
    .exitOverride();
  registerServeCommand(program);
  registerKeysCommands(program);
  registerAuditCommands(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version end with code 0; usage errors with 2, as documented.
      process.exitCode = error.exitCode === 0 ? 0 : exitCodes.usage;
      return;
    }
    printError(error);
    process.exitCode = isGuardError(error) ? exitCodes.failure : exitCodes.usage;
  }
}

await main(process.argv);
