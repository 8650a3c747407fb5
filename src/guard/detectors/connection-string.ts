import { isAlnum } from '../checks.js';
import { type Detector, defineDetector, stickyAtHit } from '../detector.js';

/**
 * Database and broker URLs with a password in their user-info part: PostgreSQL, MySQL/MariaDB,
 * MongoDB (with `+srv`), Redis and AMQP. The finding covers scheme, user, password and host, so
 * the redacted text keeps nothing that could be replayed.
 */

const SCHEMES = [
  'postgres://',
  'postgresql://',
  'mysql://',
  'mariadb://',
  'mongodb://',
  'mongodb+srv://',
  'redis://',
  'rediss://',
  'amqp://',
  'amqps://',
];

const URL_WITH_PASSWORD =
  /(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?):\/\/[^\s:/@'"<>]{0,128}:([^\s@/'"<>]{1,256})@[A-Za-z0-9._-]{1,253}(?::\d{1,5})?/iy;

// Templated or masked passwords are not secrets: `${DB_PASSWORD}`, `$PASS`, `<password>`,
// `{{ pass }}`, `%s`, `****`, `xxxx`, `...`.
const PLACEHOLDER =
  /^(?:\$\{[^}]{0,128}\}|\$[A-Za-z_][A-Za-z0-9_]{0,64}|<[^>]{0,128}>|\{\{?[^}]{0,128}\}?\}|%s|\*{1,256}|[xX]{1,256}|\.{3})$/;

function hasRealPassword(_value: string, text: string, start: number, end: number): boolean {
  const match = text.slice(start, end);
  const colon = match.indexOf(':', match.indexOf('://') + 3);
  const at = match.lastIndexOf('@');
  const password = match.slice(colon + 1, at);
  return !PLACEHOLDER.test(password);
}

/** Connection strings that embed a password. */
export const connectionString: Detector = defineDetector({
  id: 'connection_string',
  category: 'secret',
  severity: 'critical',
  label: 'CONNECTION_STRING',
  priority: 85,
  keywords: SCHEMES,
  reach: 15 + 128 + 1 + 256 + 1 + 253 + 6 + 1,
  lookBehind: 1,
  onHit: stickyAtHit(URL_WITH_PASSWORD, { left: isAlnum, validate: hasRealPassword }),
  preview: (v) => `${v.slice(0, v.indexOf('://') + 3)}***`,
});
