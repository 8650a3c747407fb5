import assert from 'node:assert/strict';
import type { Json } from './gateway-session.js';
import { runCli } from './processes.js';

/** Where a gateway keeps its trail: its data directory, and the directory the CLI runs in. */
export interface TrailPlace {
  dataDir: string;
  cwd: string;
}

/** The last `n` audit events of a data directory, as `audit tail --json` prints them. */
export async function auditTail(place: TrailPlace, n = 200): Promise<Json[]> {
  const tail = await runCli(
    ['audit', 'tail', '-n', String(n), '--json', '--data-dir', place.dataDir],
    {
      cwd: place.cwd,
    },
  );
  assert.equal(tail.code, 0, tail.stderr);
  return tail.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Json);
}

/**
 * The first audit event `match` accepts, waiting for it up to `waitMs` (events are written
 * off the request's path); fails the test when none appears.
 */
export async function waitForAuditEvent(
  place: TrailPlace,
  match: (event: Json) => boolean,
  waitMs = 5000,
): Promise<Json> {
  const until = Date.now() + waitMs;
  for (;;) {
    const found = (await auditTail(place, 50)).find(match);
    if (found) return found;
    if (Date.now() > until) assert.fail('the audit event did not appear');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
