/**
 * Allow-lists: paths never scanned (test fixtures with plainly fake keys, vendored files) and
 * value patterns never reported (a documented example key). Paths use a small glob language:
 * `*` and `?` stay within one directory, `**` crosses directories, a pattern without `/`
 * matches a name at any depth, and a match on a directory covers everything under it.
 */

/** Compiled allow-lists. */
export interface AllowList {
  /** True when findings in `file` (a scan path, `/`-separated) are accepted. */
  allowsPath(file: string): boolean;
  /** True when a found value, in its canonical form, is accepted. */
  allowsValue(canonical: string): boolean;
}

/** Allow-list sources: path globs and regular expressions over the found value. */
export interface AllowListSpec {
  paths?: string[];
  patterns?: string[];
}

const SPECIAL = /[.+^${}()|[\]\\]/;

/**
 * A regular expression for a path glob (see the module comment).
 *
 * @example
 * globToRegExp('test/fixtures/').test('test/fixtures/keys/a.env'); // true
 * globToRegExp('*.pem').test('deploy/tls/server.pem'); // true
 */
export function globToRegExp(glob: string): RegExp {
  let g = glob.replace(/^\.\//, '').replace(/\/+$/, '');
  const anchored = g.includes('/');
  if (g.startsWith('/')) g = g.slice(1);
  let source = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*' && g[i + 1] === '*') {
      i++;
      if (g[i + 1] === '/') {
        i++;
        source += '(?:.*/)?';
      } else source += '.*';
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += SPECIAL.test(c) ? `\\${c}` : c;
  }
  return new RegExp(`^${anchored ? '' : '(?:.*/)?'}${source}(?:/.*)?$`);
}

/**
 * Compiles allow-lists. Throws a TypeError naming the bad pattern's position in the list (never
 * the pattern, which may hold a value) when a value pattern is not a valid regular expression.
 *
 * @example
 * const allow = compileAllowList({ paths: ['test/fixtures/'], patterns: ['^FAKE'] });
 */
export function compileAllowList(spec: AllowListSpec = {}): AllowList {
  const paths = (spec.paths ?? []).map(globToRegExp);
  const values = (spec.patterns ?? []).map((p, i) => {
    try {
      return new RegExp(p);
    } catch {
      throw new TypeError(`allow pattern #${i + 1} is not a valid regular expression`);
    }
  });
  return {
    allowsPath: (file) => paths.some((re) => re.test(file)),
    allowsValue: (canonical) => values.some((re) => re.test(canonical)),
  };
}
