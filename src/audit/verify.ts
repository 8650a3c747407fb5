import { chainHash, GENESIS_HASH, hashedEvent } from './chain.js';
import { type Checkpoint, signatureStatus } from './checkpoint.js';
import type { StoredAuditEvent } from './sqlite-schema.js';
import { type AuditTrail, PAGE_SIZE } from './trail.js';

/** Why a chain does not verify. Stable names, for scripts reading `audit verify --json`. */
export type VerifyProblemKind =
  /** An event's content no longer matches its hash. */
  | 'edited'
  /** Sequence numbers skip: events were deleted. */
  | 'missing'
  /** An event does not point at the one before it: deleted, inserted or moved. */
  | 'broken_link'
  /** Events after the chain's recorded head, or in a chain no writer registered. */
  | 'inserted'
  /** The head names a different last event. */
  | 'head_mismatch'
  /** An event differs from a checkpoint taken when it was written: the chain was rewritten. */
  | 'checkpoint_mismatch'
  /** A checkpoint's signature does not match: it was forged or altered. */
  | 'bad_signature'
  /** The chain starts after a prune checkpoint that the key does not vouch for. */
  | 'unvouched_start';

/** One place where a chain breaks. */
export interface VerifyProblem {
  chainId: string;
  kind: VerifyProblemKind;
  /** The sequence number where it breaks, when it is at an event. */
  seq: number | null;
  eventId: string | null;
  /** A sentence for people; holds no event content. */
  message: string;
}

/** The outcome of verifying a whole trail. */
export interface VerifyReport {
  ok: boolean;
  chains: number;
  events: number;
  checkpoints: {
    total: number;
    valid: number;
    invalid: number;
    unsigned: number;
    unchecked: number;
  };
  /** Whether a key was given to check checkpoint signatures. */
  keyGiven: boolean;
  /** The first problems found, in trail order (at most `MAX_PROBLEMS`). */
  problems: VerifyProblem[];
  /** How many problems were found in all. */
  problemCount: number;
}

const MAX_PROBLEMS = 100;

type Head = { chainId: string; seq: number; hash: string } | { chainId: string; seq: null };

/**
 * Checks every chain of a trail: each event's hash, each link to the event before, contiguous
 * sequence numbers from the start (genesis, or the last prune checkpoint), the recorded head,
 * and that every checkpoint still matches its event and its signature. Reads the trail a page
 * at a time, so its size is not bounded by memory.
 *
 * Without `hmacKey`, signatures are not checked: the chains still prove that no event was edited,
 * removed, inserted or moved alone, but not that nobody rewrote the hashes after an edit.
 *
 * @example
 * const report = await verifyTrail(trail, { hmacKey: process.env.MISTRAL_GUARD_AUDIT_HMAC_KEY });
 * if (!report.ok) console.log(report.problems[0]?.message);
 */
export async function verifyTrail(
  trail: AuditTrail,
  options: { hmacKey?: string | null } = {},
): Promise<VerifyReport> {
  const key = options.hmacKey ?? null;
  const report: VerifyReport = {
    ok: true,
    chains: 0,
    events: 0,
    checkpoints: { total: 0, valid: 0, invalid: 0, unsigned: 0, unchecked: 0 },
    keyGiven: key !== null,
    problems: [],
    problemCount: 0,
  };
  const problem = (p: VerifyProblem) => {
    report.ok = false;
    report.problemCount++;
    if (report.problems.length < MAX_PROBLEMS) report.problems.push(p);
  };
  for (const head of (await trail.heads()) as Head[]) {
    report.chains++;
    await verifyChain(trail, head, key, report, problem);
  }
  return report;
}

async function verifyChain(
  trail: AuditTrail,
  head: Head,
  key: string | null,
  report: VerifyReport,
  problem: (p: VerifyProblem) => void,
): Promise<void> {
  const { chainId } = head;
  const at = (event: StoredAuditEvent, kind: VerifyProblemKind, message: string) =>
    problem({ chainId, kind, seq: event.seq, eventId: event.id, message });

  const checkpoints = await trail.checkpoints(chainId);
  for (const checkpoint of checkpoints) {
    const status = signatureStatus(checkpoint, key);
    report.checkpoints.total++;
    report.checkpoints[status]++;
    if (status === 'invalid') {
      problem({
        chainId,
        kind: 'bad_signature',
        seq: checkpoint.seq,
        eventId: null,
        message:
          `the ${checkpoint.kind} checkpoint at seq ${checkpoint.seq} has a signature that ` +
          'does not match: it was forged or altered',
      });
    }
  }
  const start = startOf(checkpoints);
  if (start.checkpoint && key !== null) {
    const status = signatureStatus(start.checkpoint, key);
    if (status === 'unsigned') {
      problem({
        chainId,
        kind: 'unvouched_start',
        seq: start.seq,
        eventId: null,
        message:
          `the chain starts after an unsigned prune checkpoint at seq ${start.seq}: whoever ` +
          'removed the events before it is not known to hold the key',
      });
    }
  }
  const pinned = new Map<number, Checkpoint>();
  for (const c of checkpoints) if (c.kind === 'periodic' && c.seq > start.seq) pinned.set(c.seq, c);

  let prev = start.hash;
  let last = start.seq;
  for (;;) {
    const page = await trail.chainEvents(chainId, last, PAGE_SIZE);
    for (const event of page) {
      report.events++;
      if (event.seq > last + 1) {
        const range =
          event.seq - 1 === last + 1 ? `${last + 1}` : `${last + 1} to ${event.seq - 1}`;
        at(event, 'missing', `events ${range} before seq ${event.seq} are missing (deleted)`);
      } else if (event.prevHash !== prev) {
        at(
          event,
          'broken_link',
          `the event at seq ${event.seq} does not follow the one before it: ` +
            'an event was deleted, inserted or moved here',
        );
      } else if (chainHash(event.prevHash, event.seq, hashedEvent(event)) !== event.hash) {
        at(event, 'edited', `the event at seq ${event.seq} was changed after it was written`);
      }
      const pin = pinned.get(event.seq);
      if (pin) {
        pinned.delete(event.seq);
        if (pin.hash !== event.hash) {
          at(
            event,
            'checkpoint_mismatch',
            `the event at seq ${event.seq} differs from the checkpoint taken when it was ` +
              'written: the chain up to it was rewritten',
          );
        }
      }
      prev = event.hash;
      last = event.seq;
    }
    if (page.length < PAGE_SIZE) break;
  }

  for (const pin of pinned.values()) {
    if (pin.seq <= last) continue;
    problem({
      chainId,
      kind: 'missing',
      seq: pin.seq,
      eventId: null,
      message:
        `a checkpoint vouches for events up to seq ${pin.seq}, but the chain ends at seq ` +
        `${last}: events at its end were deleted`,
    });
  }
  checkHead(head, last, prev, problem);
}

/** Where verification of a chain starts: the latest prune checkpoint, or genesis. */
function startOf(checkpoints: Checkpoint[]): {
  seq: number;
  hash: string;
  checkpoint: Checkpoint | null;
} {
  const prunes = checkpoints.filter((c) => c.kind === 'prune');
  const latest = prunes[prunes.length - 1];
  return latest
    ? { seq: latest.seq, hash: latest.hash, checkpoint: latest }
    : { seq: 0, hash: GENESIS_HASH, checkpoint: null };
}

function checkHead(
  head: Head,
  last: number,
  lastHash: string,
  problem: (p: VerifyProblem) => void,
): void {
  const { chainId } = head;
  const base = { chainId, eventId: null };
  if (head.seq === null) {
    problem({
      ...base,
      kind: 'inserted',
      seq: null,
      message: 'events belong to a chain that no writer registered: they were inserted',
    });
  } else if (head.seq > last) {
    problem({
      ...base,
      kind: 'missing',
      seq: head.seq,
      message:
        `the chain's head is seq ${head.seq} but its last event is seq ${last}: ` +
        'events at its end were deleted',
    });
  } else if (head.seq < last) {
    problem({
      ...base,
      kind: 'inserted',
      seq: head.seq + 1,
      message:
        `events from seq ${head.seq + 1} on come after the chain's recorded head: ` +
        'they were inserted',
    });
  } else if (head.hash !== lastHash) {
    problem({
      ...base,
      kind: 'head_mismatch',
      seq: head.seq,
      message:
        `the chain's head does not match its last event (seq ${last}): ` +
        'that event was replaced',
    });
  }
}
