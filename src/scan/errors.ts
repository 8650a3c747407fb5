/**
 * A scan, check or hook operation that cannot run as asked: a missing path, no repository, a
 * bad revision, an unreadable baseline. The message names the flag or path at fault and never
 * a found value, so it is safe to print as is; the CLI reports it with the usage exit code.
 *
 * @example
 * if (!root) throw new ScanError('--staged needs a git repository');
 */
export class ScanError extends Error {
  /** `scan_failed`, or `git_failed` when git itself refused. */
  readonly code: string;

  constructor(message: string, code = 'scan_failed') {
    super(message);
    this.name = 'ScanError';
    this.code = code;
  }
}
