import { randomBytes } from 'node:crypto';

const ALPHANUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A fake upstream key with the shape of a Mistral key (32 letters and digits). Random per run,
 * so a test that finds it in some output knows the gateway put it there.
 */
export function canaryUpstreamKey(): string {
  const bytes = randomBytes(32);
  let out = '';
  for (const b of bytes) out += ALPHANUM[b % ALPHANUM.length];
  return out;
}

/** The places a secret may show up; a test lists every one it can reach. */
export function findLeaks(secret: string, places: Record<string, string>): string[] {
  return Object.entries(places)
    .filter(([, text]) => text.includes(secret))
    .map(([name]) => name);
}
