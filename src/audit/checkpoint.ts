import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Checkpoints pin a chain's head at a moment: "event `seq` of chain `chainId` had hash `hash`".
 *
 * The event hashes are plain SHA-256, so someone who can write the database could edit an event
 * and recompute every hash after it. A checkpoint signed with a key the database never sees
 * stops that: the rewritten hashes no longer match the signed ones. `periodic` checkpoints bound
 * how much of a chain is unprotected (what came after the last one); a `prune` checkpoint marks
 * where retention cut the chain, so its remaining part verifies from there instead of from the
 * genesis value, and deleting older rows is not mistaken for tampering.
 */
export interface Checkpoint {
  chainId: string;
  seq: number;
  hash: string;
  /** When the checkpoint was taken, ISO 8601 in UTC. */
  time: string;
  kind: 'periodic' | 'prune';
  /** HMAC-SHA256 hex; null when no key was configured. */
  signature: string | null;
}

/** The chain of the embedded SQLite trail: every process writing the file shares it. */
export const SQLITE_CHAIN_ID = 'main';

function payload(checkpoint: Omit<Checkpoint, 'signature'>): string {
  const { chainId, seq, hash, time, kind } = checkpoint;
  return `mistral-guard checkpoint v1\n${chainId}\n${seq}\n${hash}\n${time}\n${kind}`;
}

/**
 * The signature of a checkpoint, or null without a key.
 *
 * @example
 * const signature = signCheckpoint({ chainId, seq, hash, time, kind: 'periodic' }, key);
 */
export function signCheckpoint(
  checkpoint: Omit<Checkpoint, 'signature'>,
  key: string | null,
): string | null {
  if (key === null) return null;
  return createHmac('sha256', key).update(payload(checkpoint)).digest('hex');
}

/** A checkpoint made now for a chain head, signed when there is a key. */
export function makeCheckpoint(
  head: { chainId: string; seq: number; hash: string },
  kind: Checkpoint['kind'],
  key: string | null,
  now: Date = new Date(),
): Checkpoint {
  const unsigned = { ...head, time: now.toISOString(), kind };
  return { ...unsigned, signature: signCheckpoint(unsigned, key) };
}

/**
 * What a checkpoint's signature says: `valid`, `invalid` (forged or altered), `unsigned` (it
 * carries none) or `unchecked` (it carries one but no key was given to check it).
 */
export function signatureStatus(
  checkpoint: Checkpoint,
  key: string | null,
): 'valid' | 'invalid' | 'unsigned' | 'unchecked' {
  if (checkpoint.signature === null) return 'unsigned';
  if (key === null) return 'unchecked';
  const expected = Buffer.from(signCheckpoint(checkpoint, key)!, 'hex');
  const actual = Buffer.from(checkpoint.signature, 'hex');
  if (expected.length !== actual.length) return 'invalid';
  return timingSafeEqual(expected, actual) ? 'valid' : 'invalid';
}

/** When a writer takes its next periodic checkpoint: after `every` events or `ms`, if any. */
export interface CheckpointPolicy {
  every: number;
  ms: number;
}

/** Default checkpoint policy: every 1,000 events or every minute with events. */
export const DEFAULT_CHECKPOINTS: CheckpointPolicy = { every: 1000, ms: 60_000 };
