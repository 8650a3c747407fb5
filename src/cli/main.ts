#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isGuardError } from '../errors.js';
import { registerAuditCommands } from './audit.js';
import { registerCheckCommands } from './check.js';
import { registerDoctorCommand } from './doctor.js';
import { registerHookCommands } from './hook.js';
import { registerKeysCommands } from './keys.js';
import { exitCodes, printError } from './output.js';
import { registerScanCommand } from './scan.js';
import { registerServeCommand } from './serve.js';
import { registerUpstreamCommands } from './upstream.js';

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
  registerScanCommand(program);
  registerCheckCommands(program);
  registerHookCommands(program);
  registerDoctorCommand(program);
  registerUpstreamCommands(program);
  return program;
}

/**
 * Output that nobody reads is not a failure: when the reader of a pipe goes away (`| head`),
 * stop quietly with the exit code so far, as other command-line tools do. Any other error on an
 * output stream ends the command with the usage code; it is reported on stderr when stdout failed.
 */
function handleOutputErrors(): void {
  const onError = (stream: NodeJS.WriteStream) => (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') {
      if (stream === process.stdout) printError(error);
      process.exitCode = exitCodes.usage;
    }
    process.exit();
  };
  process.stdout.on('error', onError(process.stdout));
  process.stderr.on('error', onError(process.stderr));
}

/**
 * An error that escapes every command (a throw in a timer, a rejected promise nobody awaited)
 * is printed like any other, as one line without its stack: a stack and its message may carry
 * values such as a key or a path.
 */
function handleStrayErrors(): void {
  const fail = (error: unknown) => {
    printError(error);
    process.exit(isGuardError(error) ? exitCodes.failure : exitCodes.usage);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
}

async function main(argv: string[]): Promise<void> {
  handleOutputErrors();
  handleStrayErrors();
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
