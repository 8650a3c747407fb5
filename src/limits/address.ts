import { isIP } from 'node:net';

/**
 * The bucket a client address is counted in for failed authentications. IPv6 addresses count
 * by their /64: one host usually holds a whole /64, so counting single addresses would let it
 * make 2^64 fresh guesses per window. IPv4-mapped IPv6 addresses count as their IPv4 address.
 *
 * @example
 * authBucket('2001:db8::1') === authBucket('2001:db8::ffff') // same /64
 */
export function authBucket(address: string): string {
  const version = isIP(address);
  if (version === 4) return address;
  if (version !== 6) return `?${address}`;
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7);
  const [head = '', tail] = lower.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0')];
  const prefix: string[] = [];
  for (let i = 0; i < 4; i++) prefix.push(Number.parseInt(groups[i] ?? '0', 16).toString(16));
  return `${prefix.join(':')}::/64`;
}
