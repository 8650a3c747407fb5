/** One problem in the configuration: where, what is wrong, and what is expected. */
export interface ConfigProblem {
  /** Dotted path in the configuration, e.g. `profiles.production.maxTokens`. */
  path: string;
  message: string;
  /** Where the value came from, e.g. `MISTRAL_GUARD_PORT`, `--env` or `mistral-guard.yaml`. */
  source?: string;
  /** For a problem in the YAML file: the 1-based line of the value (or key) at fault. */
  line?: number;
  /** For a problem in the YAML file: the 1-based column of the value (or key) at fault. */
  column?: number;
}

/**
 * A configuration that cannot be used. Carries every problem found, never a value: a value may
 * be a secret pasted into the wrong field.
 *
 * @example
 * // error: invalid configuration (1 problem):
 * //   - server.port [from /srv/mistral-guard.yaml:2:9]: Too big: expected number to be <=65535
 * process.stderr.write(`${error.format()}\n`);
 */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'})`);
    this.name = 'ConfigError';
    this.problems = problems;
  }

  /** A readable report, one problem per line; a file position reads `file:line:column`. */
  format(): string {
    const lines = this.problems.map((p) => {
      const where = p.path || '(root)';
      return `  - ${where}${p.source ? ` [from ${sourceOf(p)}]` : ''}: ${p.message}`;
    });
    return [`error: ${this.message}:`, ...lines].join('\n');
  }
}

function sourceOf(problem: ConfigProblem): string {
  const { source = '', line, column } = problem;
  if (line === undefined) return source;
  return column === undefined ? `${source}:${line}` : `${source}:${line}:${column}`;
}
