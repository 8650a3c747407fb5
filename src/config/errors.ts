/** One problem in the configuration: where, what is wrong, and what is expected. */
export interface ConfigProblem {
  /** Dotted path in the configuration, e.g. `profiles.production.maxTokens`. */
  path: string;
  message: string;
  /** Where the value came from, e.g. `MISTRAL_GUARD_PORT` or `mistral-guard.yaml`. */
  source?: string;
}

/**
 * A configuration that cannot be used. Carries every problem found, never a value: a value may
 * be a secret pasted into the wrong field.
 */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'})`);
    this.name = 'ConfigError';
    this.problems = problems;
  }

  /** A readable report, one problem per line. */
  format(): string {
    const lines = this.problems.map((p) => {
      const where = p.path || '(root)';
      return `  - ${where}${p.source ? ` [from ${p.source}]` : ''}: ${p.message}`;
    });
    return [`error: ${this.message}:`, ...lines].join('\n');
  }
}
