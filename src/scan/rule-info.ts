import type { Severity } from '../guard/index.js';

/** Words for people about each guard detector, used by reports. */
export interface RuleInfo {
  /** A short name such as "Mistral API key". */
  title: string;
  /** What to do about a finding. */
  help: string;
}

const ROTATE = 'Revoke or rotate it at its issuer, then remove it from the file and its history.';

const INFO: Record<string, RuleInfo> = {
  mistral_api_key: {
    title: 'Mistral API key',
    help: `Revoke it in the Mistral console (La Plateforme, API keys), give the application a new one through the environment or a secret manager, then remove it from the file and its history.`,
  },
  virtual_key: {
    title: 'mistral-guard virtual key',
    help: 'Revoke it with `mistral-guard keys revoke <id>` and issue a new one.',
  },
  openai_api_key: { title: 'OpenAI API key', help: ROTATE },
  anthropic_api_key: { title: 'Anthropic API key', help: ROTATE },
  aws_access_key_id: { title: 'AWS access key id', help: ROTATE },
  aws_secret_access_key: { title: 'AWS secret access key', help: ROTATE },
  gcp_service_account: { title: 'Google Cloud service account key', help: ROTATE },
  github_token: { title: 'GitHub token', help: ROTATE },
  gitlab_token: { title: 'GitLab token', help: ROTATE },
  slack_token: { title: 'Slack token', help: ROTATE },
  slack_webhook: { title: 'Slack webhook URL', help: ROTATE },
  stripe_secret_key: { title: 'Stripe secret key', help: ROTATE },
  jwt: { title: 'JSON Web Token', help: 'Invalidate the token or the key that signed it.' },
  pem_private_key: { title: 'Private key (PEM)', help: `Replace the key pair. ${ROTATE}` },
  connection_string: { title: 'Connection string with a password', help: ROTATE },
  secret_assignment: { title: 'Hard-coded secret', help: ROTATE },
};

/**
 * The title and advice for a rule; unknown and custom rules get generic words.
 *
 * @example ruleInfo('mistral_api_key').title // 'Mistral API key'
 */
export function ruleInfo(rule: string): RuleInfo {
  return (
    INFO[rule] ?? {
      title: rule.replace(/_/g, ' '),
      help: 'Remove the value from the file and its history; rotate it if it is a credential.',
    }
  );
}

/** SARIF level and GitHub security-severity score for a guard severity. */
export function severityScore(severity: Severity): { level: string; score: string } {
  switch (severity) {
    case 'critical':
      return { level: 'error', score: '9.5' };
    case 'high':
      return { level: 'error', score: '8.0' };
    case 'medium':
      return { level: 'warning', score: '5.5' };
    default:
      return { level: 'note', score: '3.0' };
  }
}
