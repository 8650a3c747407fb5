import { charClasses, classCount, entropy, isAlnum, isToken } from '../checks.js';
import { type Detector, defineDetector, prefixPreview, stickyAtHit } from '../detector.js';

/**
 * API keys of other AI and SaaS providers that share a prompt with Mistral traffic: OpenAI,
 * Anthropic, Stripe and Slack. All carry a literal prefix, which is both the pre-filter keyword
 * and the only part a preview may show. The random body must look random, so documentation
 * placeholders such as `sk-proj-xxxxxxxx…` are not reported.
 */

function randomBody(prefixLength: number, minEntropy: number) {
  return (value: string): boolean => {
    const body = value.slice(prefixLength);
    return classCount(charClasses(body)) >= 2 && entropy(body) >= minEntropy;
  };
}

// `sk-ant-` keys are Anthropic's, so the OpenAI pattern never reads past `sk-` into `ant-`.
const OPENAI = /sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,250}|[A-Za-z0-9]{48})/y;

/** OpenAI keys: project, service-account and admin keys, and legacy 48-character keys. */
export const openaiKey: Detector = defineDetector({
  id: 'openai_api_key',
  category: 'secret',
  severity: 'critical',
  label: 'OPENAI_KEY',
  priority: 70,
  keywords: ['sk-'],
  reach: 262,
  lookBehind: 1,
  onHit: stickyAtHit(OPENAI, { left: isToken, right: isToken, validate: randomBody(3, 3.5) }),
  preview: prefixPreview(['sk-proj-', 'sk-svcacct-', 'sk-admin-', 'sk-']),
});

const ANTHROPIC = /sk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_-]{40,200}/y;

/** Anthropic keys: `sk-ant-api03-…` and the other `sk-ant-<kind><version>-` families. */
export const anthropicKey: Detector = defineDetector({
  id: 'anthropic_api_key',
  category: 'secret',
  severity: 'critical',
  label: 'ANTHROPIC_KEY',
  priority: 75,
  keywords: ['sk-ant-'],
  reach: 220,
  lookBehind: 1,
  onHit: stickyAtHit(ANTHROPIC, { left: isToken, right: isToken, validate: randomBody(13, 3.5) }),
  preview: prefixPreview(['sk-ant-']),
});

const STRIPE = /(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,247}/y;

/** Stripe secret and restricted keys, live and test. */
export const stripeKey: Detector = defineDetector({
  id: 'stripe_secret_key',
  category: 'secret',
  severity: 'high',
  label: 'STRIPE_KEY',
  priority: 70,
  keywords: ['sk_live_', 'rk_live_', 'sk_test_', 'rk_test_'],
  reach: 256,
  lookBehind: 1,
  onHit: stickyAtHit(STRIPE, { left: isToken, right: isAlnum, validate: randomBody(8, 3.2) }),
  preview: prefixPreview(['sk_live_', 'rk_live_', 'sk_test_', 'rk_test_']),
});

const SLACK_TOKEN =
  /(?:xox[abeprs]-\d{6,14}-[0-9A-Za-z-]{10,200}|xapp-\d-[A-Z0-9]{8,14}-\d{8,14}-[a-z0-9]{32,80})/y;

/** Slack bot, user, refresh and app-level tokens. */
export const slackToken: Detector = defineDetector({
  id: 'slack_token',
  category: 'secret',
  severity: 'high',
  label: 'SLACK_TOKEN',
  priority: 70,
  keywords: ['xoxa-', 'xoxb-', 'xoxe-', 'xoxp-', 'xoxr-', 'xoxs-', 'xapp-'],
  reach: 230,
  lookBehind: 1,
  onHit: stickyAtHit(SLACK_TOKEN, { left: isToken, right: isToken, validate: randomBody(5, 3) }),
  preview: prefixPreview(['xoxa-', 'xoxb-', 'xoxe-', 'xoxp-', 'xoxr-', 'xoxs-', 'xapp-']),
});

const SLACK_HOOK =
  /hooks\.slack\.com\/(?:services|workflows|triggers)\/T[A-Z0-9]{6,12}\/[A-Z0-9]{6,14}\/[A-Za-z0-9]{16,40}/y;
const HTTPS = 'https://';
const hookAtHit = stickyAtHit(SLACK_HOOK, { right: isAlnum });

/** Slack incoming-webhook URLs: whoever holds one can post into the channel. */
export const slackWebhook: Detector = defineDetector({
  id: 'slack_webhook',
  category: 'secret',
  severity: 'high',
  label: 'SLACK_WEBHOOK',
  priority: 70,
  keywords: ['hooks.slack.com/'],
  lead: HTTPS.length,
  reach: 120,
  lookBehind: HTTPS.length + 1,
  onHit(text, at, emit) {
    hookAtHit(text, at, (start, end) => {
      const withScheme = text.startsWith(HTTPS, start - HTTPS.length);
      emit(withScheme ? start - HTTPS.length : start, end);
    });
  },
  preview: () => 'https://hooks.slack.com/***',
});
