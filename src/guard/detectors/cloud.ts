import { charClasses, DIGIT, entropy, isAlnum, isHex, LOWER, UPPER } from '../checks.js';
import { type Detector, defineDetector, scanWindow, stickyAtHit } from '../detector.js';

/**
 * Cloud credentials: AWS access key ids and secret access keys, and Google Cloud
 * service-account JSON files.
 */

// Access key ids (`AKIA`) and temporary ones (`ASIA`) are 20 characters of base32. The id alone
// is not a secret, but it is the half of a pair that leaks together, and it pins the account.
const AWS_ID = /(?:AKIA|ASIA)[A-Z2-7]{16}/y;

/** AWS access key ids. The documentation's own `…EXAMPLE` ids are not reported. */
export const awsAccessKeyId: Detector = defineDetector({
  id: 'aws_access_key_id',
  category: 'secret',
  severity: 'high',
  label: 'AWS_ACCESS_KEY_ID',
  priority: 70,
  keywords: ['akia', 'asia'],
  reach: 21,
  lookBehind: 1,
  onHit: stickyAtHit(AWS_ID, {
    left: isAlnum,
    right: isAlnum,
    validate: (v) => !v.endsWith('EXAMPLE') && entropy(v.slice(4)) >= 2.5,
  }),
  preview: (v) => `${v.slice(0, 4)}***`,
});

const SECRET_LENGTH = 40;
const SECRET_CANDIDATE = /(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g;
// The secret is 40 base64 characters with no prefix, so like a Mistral key it needs a keyword:
// "aws" (`aws_secret_access_key`, `AWS_SECRET_ACCESS_KEY`) or the CLI's JSON field name.
const AWS_WORDS = ['aws', 'secretaccesskey', 'secret_access_key'];
const AFTER_GAP = 64;
const BEFORE_GAP = 24;

function nearAwsWord(hits: number[], start: number, end: number): boolean {
  for (const h of hits) {
    if (h < start && start - h <= AFTER_GAP) return true;
    if (h >= end && h - end <= BEFORE_GAP) return true;
  }
  return false;
}

/** AWS secret access keys near an AWS keyword. Hex strings such as SHA-1 digests are skipped. */
export const awsSecretKey: Detector = defineDetector({
  id: 'aws_secret_access_key',
  category: 'secret',
  severity: 'critical',
  label: 'AWS_SECRET_KEY',
  priority: 75,
  keywords: AWS_WORDS,
  lead: BEFORE_GAP + SECRET_LENGTH + 1,
  reach: AFTER_GAP + SECRET_LENGTH + 1,
  tailHold: SECRET_LENGTH + BEFORE_GAP + 'secret_access_key'.length + 1,
  lookBehind: AFTER_GAP + 1,
  inWindow(text, from, to, hits, emit) {
    // Hits are few per window (a keyword per credential line), so a linear look is enough.
    const near = hits.filter((h) => h >= from - AFTER_GAP && h <= to + BEFORE_GAP);
    const accept = (start: number, end: number): boolean => {
      const v = text.slice(start, end);
      const mask = charClasses(v);
      if ((mask & (LOWER | UPPER | DIGIT)) !== (LOWER | UPPER | DIGIT)) return false;
      return !isHex(v) && entropy(v) >= 4 && nearAwsWord(near, start, end);
    };
    scanWindow(SECRET_CANDIDATE, text, from, to, accept, emit);
  },
});

// The `private_key` field of a service-account file, with the PEM block as a JSON string. The
// view has already turned `\n` escapes into newlines.
const GCP_KEY = /private_key"\s{0,4}:\s{0,4}"(-----BEGIN[^"]{32,4096})"/y;
const GCP_CONTEXT = 1024;
const GCP_TYPE = /"type"\s{0,4}:\s{0,4}"service_account"/;

/** Google Cloud service-account keys: a `private_key` inside a `service_account` JSON object. */
export const gcpServiceAccount: Detector = defineDetector({
  id: 'gcp_service_account',
  category: 'secret',
  severity: 'critical',
  label: 'GCP_SERVICE_ACCOUNT',
  priority: 85,
  keywords: ['private_key"'],
  reach: 4200 + GCP_CONTEXT,
  lookBehind: GCP_CONTEXT,
  onHit(text, at, emit) {
    GCP_KEY.lastIndex = at;
    const m = GCP_KEY.exec(text);
    if (!m) return;
    const end = at + m[0].length - 1;
    const start = end - m[1]!.length;
    const around = text.slice(
      Math.max(0, at - GCP_CONTEXT),
      Math.min(text.length, end + GCP_CONTEXT),
    );
    if (GCP_TYPE.test(around)) emit(start, end);
  },
  preview: () => '-----BEGIN ***',
});
