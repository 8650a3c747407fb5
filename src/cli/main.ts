#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isGuardError } from '../errors.js';
import { exitCodes, printError } from './output.js';

type Register = (program: Command) => void;

/**
 * Each command's module, loaded only when that command runs: a scan in a pre-commit hook should
 * not pay for the gateway, the stores and the cloud clients (about 0.3 s of start-up).
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  serve: async () => (await import('./serve.js')).registerServeCommand,
  keys: async () => (await import('./keys.js')).registerKeysCommands,
  audit: async () => (await import('./audit.js')).registerAuditCommands,
  scan: async () => (await import('./scan.js')).registerScanCommand,
  check: async () => (await import('./check.js')).registerCheckCommands,
  hook: async () => (await import('./hook.js')).registerHookCommands,
  doctor: async () => (await import('./doctor.js')).registerDoctorCommand,
  upstream: async () => (await import('./upstream.js')).registerUpstreamCommands,
};

/** Global options that take a value, so the value is not mistaken for the command. */
const VALUED_OPTIONS = new Set(['--config', '--data-dir', '--env']);

/** The command `argv` runs, when it names a known one. */
function commandOf(argv: string[]): string | undefined {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (VALUED_OPTIONS.has(arg)) {
      i++;
      continue;
    }
    if (arg.startsWith('-')) continue;
    return Object.hasOwn(COMMANDS, arg) ? arg : undefined;
  }
  return undefined;
}

/**
 * Builds the `mistral-guard` command line with every command, or only `only` (what `main` does
 * when the command line names one); exported so tests can drive it in-process.
 */
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command('mistral-guard')
    .description('A security layer for applications that call the Mistral AI API.')
    .version('0.1.0')
    .option('--config <path>', 'configuration file (default: ./mistral-guard.yaml when present)')
    .option('--data-dir <dir>', 'where the embedded store lives (default: ./.mistral-guard)')
    .option('--env <name>', 'environment (default: MISTRAL_GUARD_ENV, NODE_ENV, development)')
    .showHelpAfterError()
    .exitOverride();
  for (const [name, load] of Object.entries(COMMANDS)) {
    if (only === undefined || only === name) (await load())(program);
  }
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
  try {
    const program = await buildProgram(commandOf(argv));
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
