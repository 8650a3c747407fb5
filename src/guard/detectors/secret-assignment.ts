import { charClasses, classCount, entropy, isTrivialRun } from '../checks.js';
import { type Detector, defineDetector, stickyAtHit } from '../detector.js';

/**
 * Generic `password = …`, `secret: …`, `api_key=…`, `token: …` assignments, in code, config,
 * env files, JSON and logs. The label may carry a prefix or suffix (`DB_PASSWORD`,
 * `client_secret`, `apiKeyProd`). Prose uses the same words ("the token: idea", "password:
 * required"), so the value must look like a credential: at least 6 characters, two character
 * classes (or long and high-entropy), not a plain word, number, placeholder, path, URL or code
 * reference.
 */

const KEYWORDS = [
  'password',
  'passwd',
  'passphrase',
  'pwd',
  'secret',
  'api_key',
  'api-key',
  'apikey',
  'access_key',
  'access-key',
  'accesskey',
  'token',
];

const ASSIGNMENT =
  /(?:password|passwd|passphrase|pwd|secret|api[_-]?key|access[_-]?key|token)[A-Za-z0-9_.-]{0,30}?(?:\\?["'])?\s{0,3}(?::=|=>|=|:)\s{0,3}(?:\\?["'`])?([^\s"'`,;<>\\]{6,200})/iy;

const PLACEHOLDER =
  /^(?:your|my|the|example|sample|dummy|fake|placeholder|redacted|changeme|change_me|none|null|nil|undefined|true|false|required|optional|string|number|secret|password|token|env|xxx|\*\*\*|\.\.\.)/i;
// Documentation values anywhere in the value: `sk-ant-api03-...`, `AKIA…EXAMPLE`, `key_xxxx`.
const MASKED = /\.\.\.|…|xxxx|\*\*\*|example|sample|placeholder|your[_-]/i;
const PLAIN_WORD = /^(?:[A-Za-z][a-z]*|[A-Z][A-Z_]*|[a-z][a-z_-]*)$/;
const NUMBER_LIKE = /^[\d.,:]+(?:[a-z]{0,3})?$/i;
const CODE_REF =
  /^(?:[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*|\[[^\]]{0,64}\])+|process\.env|os\.environ)/;
const TEMPLATE = /^(?:\$\{|\$[A-Z_]|\{\{|<|%[s(]|\/|\.\/|~\/|[a-z][a-z0-9+.-]*:\/\/)/;

// The complement of the value class of ASSIGNMENT: a value running past 200 characters is
// something else (a blob, a document) and is left to the other detectors.
function isValueChar(code: number): boolean {
  if (code <= 32) return false;
  return (
    code !== 34 &&
    code !== 39 &&
    code !== 96 &&
    code !== 44 &&
    code !== 59 &&
    code !== 60 &&
    code !== 62 &&
    code !== 92
  );
}

// A camelCase or PascalCase name of letters only is a code identifier (`(token: metricInput)`,
// `password: PasswordField`), not a secret. A passphrase written that way is missed: the cost of
// not flagging every typed parameter in a code base.
const IDENTIFIER = /^(?:[a-z]+(?:[A-Z][a-z]+)+|(?:[A-Z][a-z]+){2,})[)\]}]*$/;

function looksLikeCredential(value: string): boolean {
  if (value.includes('(') || isTrivialRun(value) || MASKED.test(value)) return false;
  if (IDENTIFIER.test(value)) return false;
  if (PLAIN_WORD.test(value) || NUMBER_LIKE.test(value)) return false;
  if (PLACEHOLDER.test(value) || CODE_REF.test(value) || TEMPLATE.test(value)) return false;
  const bits = entropy(value);
  if (classCount(charClasses(value)) >= 2) return bits >= 2.5;
  return value.length >= 16 && bits >= 3.5;
}

/** Credential-looking values assigned to a password, secret, API key or token label. */
export const secretAssignment: Detector = defineDetector({
  id: 'secret_assignment',
  category: 'secret',
  severity: 'high',
  label: 'SECRET',
  priority: 10,
  keywords: KEYWORDS,
  reach: 12 + 30 + 2 + 3 + 2 + 3 + 2 + 200 + 1,
  lookBehind: 1,
  onHit: stickyAtHit(ASSIGNMENT, {
    valueGroup: true,
    right: isValueChar,
    validate: (v) => looksLikeCredential(v),
  }),
});
