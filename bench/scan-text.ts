// The text of the leak scanner's benchmark repository: fake keys of every kind the scanner
// knows, each shaped as its provider issues them (and as secretlint's rules expect), filler lines
// in the style of each file type with the odd decoy, and minified bundles. Seeded, so a run
// builds the same repository every time.

/** The kinds of planted key, each named after the scanner rule that should report it. */
export const KINDS = [
  'mistral_api_key',
  'openai_api_key',
  'anthropic_api_key',
  'github_token',
  'aws_access_key_id',
  'aws_secret_access_key',
  'slack_token',
  'stripe_secret_key',
  'pem_private_key',
] as const;

/** A planted key kind; also the scanner rule expected to find it. */
export type Kind = (typeof KINDS)[number];

/** Letters and digits, the alphabet of a Mistral key. */
export const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const URLSAFE = `${BASE62}_-`;
const BASE64 = `${BASE62}+/`;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** Words the filler is made of. */
export const WORDS = [
  ...'order total item price user account request response cache queue worker retry limit'.split(
    ' ',
  ),
  ...'token model prompt answer stream buffer config service client server handler'.split(' '),
  ...'route metric budget'.split(' '),
];

/** A seeded source of random choices, characters and keys. */
export function generator(seed: number) {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chars = (alphabet: string, n: number): string => {
    let out = '';
    for (let i = 0; i < n; i++) out += alphabet[int(alphabet.length)];
    return out;
  };
  // Random keys may by chance miss a character class a rule asks for; mixed ones are kept.
  const mixed = (alphabet: string, n: number): string => {
    for (;;) {
      const v = chars(alphabet, n);
      if (/[A-Z]/.test(v) && /[a-z]/.test(v) && /[0-9]/.test(v) && /[A-Za-z0-9]$/.test(v)) return v;
    }
  };
  return { rand, int, pick, chars, mixed };
}

/** What `generator` returns. */
export type Gen = ReturnType<typeof generator>;

/** Lines of one planted key, and a part of it unique enough to find it again. */
export function keyLines(g: Gen, kind: Kind): { lines: string[]; needle: string } {
  const one = (prefix: string, value: string) => ({
    lines: [`${prefix}${value}`],
    needle: value,
  });
  switch (kind) {
    case 'mistral_api_key':
      return one(
        g.pick(['MISTRAL_API_KEY=', 'export MISTRAL_API_KEY=', '  mistralApiKey: ']),
        g.mixed(BASE62, 32),
      );
    case 'openai_api_key':
      return one(
        'OPENAI_API_KEY=',
        `sk-proj-${g.mixed(URLSAFE, 74)}T3BlbkFJ${g.mixed(BASE62, 74)}`,
      );
    case 'anthropic_api_key':
      return one('ANTHROPIC_API_KEY=', `sk-ant-api03-${g.mixed(URLSAFE, 93)}AA`);
    case 'github_token':
      return one(g.pick(['GITHUB_TOKEN=', 'gh_token: ']), `ghp_${g.mixed(BASE62, 36)}`);
    case 'aws_access_key_id':
      return one('aws_access_key_id = ', `AKIA${g.chars(BASE32, 16)}`);
    case 'aws_secret_access_key':
      return one(
        g.pick(['AWS_SECRET_ACCESS_KEY=', 'aws_secret_access_key = ']),
        g.mixed(BASE64, 40),
      );
    case 'slack_token':
      return one(
        'SLACK_BOT_TOKEN=',
        `xoxb-${g.chars('123456789', 11)}-${g.chars('123456789', 13)}-${g.mixed(BASE62, 24)}`,
      );
    case 'stripe_secret_key':
      return one('STRIPE_SECRET_KEY=', `sk_live_${g.mixed(BASE62, 32)}`);
    case 'pem_private_key': {
      const body = Array.from(
        { length: 8 },
        (_, i) => (i === 0 ? 'MIIEow' : '') + g.chars(BASE64, i === 0 ? 58 : 64),
      );
      return {
        lines: ['-----BEGIN RSA PRIVATE KEY-----', ...body, '-----END RSA PRIVATE KEY-----'],
        needle: body[0]!,
      };
    }
  }
}

/**
 * A filler line in the style of a file type: words, numbers and the odd decoy (a hex id next to
 * "mistral", a documented placeholder key) that a scanner should leave alone.
 */
export function fillerLine(g: Gen, ext: string): string {
  const w = () => g.pick(WORDS);
  const n = () => g.int(10_000);
  if (g.rand() < 0.01) {
    return g.pick([
      `// mistral request id ${g.chars('0123456789abcdef', 32)}`,
      'MISTRAL_API_KEY=your-api-key-here',
      '# model: mistral-small-latest, temperature 0.3',
      `commit ${g.chars('0123456789abcdef', 40)} (aws deploy)`,
      'OPENAI_API_KEY=sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
    ]);
  }
  if (ext === 'md')
    return `The ${w()} ${w()} is sent to the ${w()} after ${n()} ms, then the ${w()} is ${w()}ed.`;
  if (ext === 'yaml') return `${w()}_${w()}: ${g.rand() < 0.5 ? n() : `"${w()}-${w()}"`}`;
  if (ext === 'json') return `  "${w()}${n()}": { "${w()}": ${n()}, "${w()}": "${w()} ${w()}" },`;
  if (ext === 'py') return `    ${w()}_${w()} = ${w()}.${w()}(${n()}, "${w()}")`;
  return g.pick([
    `  const ${w()}${n()} = await ${w()}.${w()}(${w()}, ${n()});`,
    `  if (${w()}.${w()} > ${n()}) return ${w()}(${w()});`,
    `export function ${w()}${n()}(${w()}: ${w()}Input): number {`,
    `  // ${w()} the ${w()} before the ${w()} ${w()} is read`,
    '}',
  ]);
}

/** One minified line of about `bytes` characters. */
export function minified(g: Gen, bytes: number): string {
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    const p = `var ${g.pick(WORDS)}${g.int(999)}=function(a,b){return a.${g.pick(WORDS)}(b,${g.int(99)})};`;
    parts.push(p);
    size += p.length;
  }
  return parts.join('');
}
