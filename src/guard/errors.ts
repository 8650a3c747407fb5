import { GuardError } from '../errors.js';

/**
 * Inspection must fail closed: any internal failure while scanning becomes a GuardError with
 * code `inspection_failed`, and the caller decides (the gateway refuses to forward). The cause
 * keeps the failing error's name and stack frames but not its message, since messages of
 * built-ins may quote the input (a JSON parse error does).
 */
export function inspectionFailed(error: unknown): GuardError {
  if (error instanceof GuardError) return error;
  const cause = new Error('internal failure during inspection (message withheld)');
  if (error instanceof Error) {
    cause.name = error.name;
    const frames = (error.stack ?? '').split('\n').slice(1).join('\n');
    cause.stack = `${error.name}: message withheld\n${frames}`;
  }
  return new GuardError('inspection_failed', { cause });
}

/** Runs `work`, turning any throw into an `inspection_failed` GuardError. */
export function failClosed<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw inspectionFailed(error);
  }
}
