import { appendFile, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { globToRegExp } from './allow.js';
import { gitRecords, gitText, repoRoot } from './git.js';

/**
 * Whether a project ignores the files secrets usually live in, by git's own rules (every
 * `.gitignore` on the way, negations, `.git/info/exclude` and the global excludes file),
 * asked of `git check-ignore --no-index` so tracked files are judged by the rules alone.
 */

/** A pattern that must be ignored, and the path used to ask git about it. */
interface Sensitive {
  pattern: string;
  probe: string;
}

/** What must be ignored at the root of a project. */
export const SENSITIVE_PATTERNS: readonly Sensitive[] = [
  { pattern: '.env', probe: '.env' },
  { pattern: '.env.local', probe: '.env.local' },
  { pattern: '.env.*.local', probe: '.env.production.local' },
  { pattern: '*.pem', probe: 'mistral-guard-probe.pem' },
  { pattern: '*.key', probe: 'mistral-guard-probe.key' },
  { pattern: 'secrets/', probe: 'secrets/' },
];

/** The verdict on one pattern. */
export interface PatternCheck {
  pattern: string;
  /**
   * `ignored` by a committed `.gitignore`; `local` when only this clone's exclude files ignore
   * it (other clones would commit the file); `missing` when nothing ignores it.
   */
  status: 'ignored' | 'local' | 'missing';
  /** The deciding rule as `file:line: pattern`, when one matched (a negation for `missing`). */
  rule?: string;
}

/** The result of `checkGitignore`. */
export interface GitignoreCheck {
  root: string;
  /** The directory checked, relative to the repository root ('' for the root itself). */
  dir: string;
  patterns: PatternCheck[];
  /** Tracked files that match a sensitive pattern, from the repository root. */
  tracked: string[];
}

/**
 * Checks `dir` (in a git repository). Returns null outside one.
 *
 * @example
 * const result = await checkGitignore(process.cwd());
 * result?.patterns.filter((p) => p.status !== 'ignored');
 */
export async function checkGitignore(dir: string): Promise<GitignoreCheck | null> {
  const root = await repoRoot(dir);
  if (!root) return null;
  const input = SENSITIVE_PATTERNS.map((s) => `${s.probe}\0`).join('');
  const args = ['check-ignore', '--no-index', '--verbose', '--non-matching', '--stdin', '-z'];
  const fields: string[] = [];
  for await (const f of gitRecords(args, { cwd: dir, input, okExitCodes: [1] }, 0))
    fields.push(f.toString('utf8'));
  const patterns = SENSITIVE_PATTERNS.map((s, i): PatternCheck => {
    const [source, line, rule] = fields.slice(i * 4, i * 4 + 3);
    if (!rule) return { pattern: s.pattern, status: 'missing' };
    const where = `${source}:${line}: ${rule}`;
    if (rule.startsWith('!')) return { pattern: s.pattern, status: 'missing', rule: where };
    const committed = basename(source ?? '') === '.gitignore';
    return { pattern: s.pattern, status: committed ? 'ignored' : 'local', rule: where };
  });
  const prefix = (await gitText(['rev-parse', '--show-prefix'], { cwd: dir })).trim();
  return { root, dir: prefix.replace(/\/$/, ''), patterns, tracked: await trackedSensitive(dir) };
}

const SENSITIVE_PATHS = SENSITIVE_PATTERNS.map((s) => globToRegExp(s.pattern));

async function trackedSensitive(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of gitRecords(['ls-files', '-z', '--full-name'], { cwd: dir }, 0)) {
    const path = entry.toString('utf8');
    if (SENSITIVE_PATHS.some((re) => re.test(path))) found.push(path);
  }
  return found;
}

/**
 * Appends the patterns `check` found missing or only locally ignored to the `.gitignore` of the
 * checked directory (created if absent). A later line wins in git, so an appended pattern also
 * overrides an earlier negation. Returns the patterns added.
 *
 * @example
 * const added = await fixGitignore(result);
 */
export async function fixGitignore(check: GitignoreCheck): Promise<string[]> {
  const missing = check.patterns.filter((p) => p.status !== 'ignored').map((p) => p.pattern);
  if (missing.length === 0) return [];
  const file = join(check.root, check.dir, '.gitignore');
  const current = await readFile(file, 'utf8').catch(() => '');
  const lead = current === '' || current.endsWith('\n') ? '' : '\n';
  const block = `${lead}${current === '' ? '' : '\n'}# Secrets (added by mistral-guard check gitignore)\n${missing.join('\n')}\n`;
  await appendFile(file, block);
  return missing;
}
