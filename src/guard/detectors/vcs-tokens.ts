import { charClasses, classCount, entropy, isToken, isWord } from '../checks.js';
import { type Detector, defineDetector, prefixPreview, stickyAtHit } from '../detector.js';

/**
 * Source-hosting tokens: GitHub personal, OAuth, user-to-server, server-to-server and refresh
 * tokens and fine-grained PATs, and GitLab personal, project, deploy and runner tokens.
 */

function randomBody(prefixLength: number) {
  return (value: string): boolean => {
    const body = value.slice(prefixLength);
    return classCount(charClasses(body)) >= 2 && entropy(body) >= 3.5;
  };
}

// TODO: GitHub's tokens end in a CRC32 checksum of their body; without checking it, a
// hand-typed look-alike of the right length is reported as a token. A test with a token whose
// last six characters are altered, expecting no finding, settles it.
const GITHUB = /(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{60,255})/y;

/** GitHub tokens. */
export const githubToken: Detector = defineDetector({
  id: 'github_token',
  category: 'secret',
  severity: 'critical',
  label: 'GITHUB_TOKEN',
  priority: 70,
  keywords: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'],
  reach: 270,
  lookBehind: 1,
  onHit: stickyAtHit(GITHUB, { left: isWord, right: isWord, validate: randomBody(4) }),
  preview: prefixPreview(['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_']),
});

const GITLAB =
  /(?:glpat|glptt|gldt|glrt)-[A-Za-z0-9_-]{20,100}(?:\.[A-Za-z0-9]{2}\.[A-Za-z0-9]{6,12})?/y;

/** GitLab tokens, including the newer form with a `.01.<checksum>` tail. */
export const gitlabToken: Detector = defineDetector({
  id: 'gitlab_token',
  category: 'secret',
  severity: 'critical',
  label: 'GITLAB_TOKEN',
  priority: 70,
  keywords: ['glpat-', 'glptt-', 'gldt-', 'glrt-'],
  reach: 125,
  lookBehind: 1,
  onHit: stickyAtHit(GITLAB, { left: isToken, right: isToken, validate: randomBody(6) }),
  preview: prefixPreview(['glpat-', 'glptt-', 'gldt-', 'glrt-']),
});
