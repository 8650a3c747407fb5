import { ConfigError } from '../config/errors.js';
import { isGuardError } from '../errors.js';

/** CLI exit codes, a documented contract. */
export const exitCodes = {
  ok: 0,
  /** The command ran and found something wrong (findings, a failed check, a refused action). */
  failure: 1,
  /** Bad usage, bad configuration or an I/O error. */
  usage: 2,
} as const;

/**
 * Bad command-line input, found by a command after parsing. Its message is printed as is, so it
 * names the flag at fault and never repeats the value (which may be a pasted secret).
 */
export class UsageError extends Error {
  readonly code = 'usage';

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Prints a result line to stdout. */
export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Prints one JSON document to stdout. */
export function outJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Prints an error for a person on stderr. Only messages known to be safe are printed verbatim:
 * unknown errors may carry values (a key in a URL, a path with a secret), so they print as a
 * generic line and a code.
 */
export function printError(error: unknown): void {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.format()}\n`);
    return;
  }
  if (error instanceof UsageError) {
    process.stderr.write(`error: ${error.message}\n`);
    return;
  }
  if (isGuardError(error)) {
    process.stderr.write(`error: ${error.message} (${error.code})\n`);
    return;
  }
  const code = (error as NodeJS.ErrnoException)?.code;
  process.stderr.write(`error: the command failed${code ? ` (${code})` : ''}\n`);
}
