import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The file under the data directory that remembers when each upstream key was first seen. */
export const KEY_AGE_FILE = 'upstream-keys.json';

const DAY_MS = 86_400_000;
const FINGERPRINT = /^[0-9a-f]{12}$/;

/** How old a key is against the rotation period; what status and logs show. */
export interface KeyAge {
  firstSeenAt: string;
  ageDays: number;
  /** Older than the rotation period: time to rotate. */
  overdue: boolean;
}

/**
 * The date each upstream key fingerprint was first seen, kept in a small JSON file
 * (`{ "<fingerprint>": "<ISO date>" }`) so a key's age survives restarts. Only fingerprints
 * are written, never keys. Without a file (`path` null) dates live in memory only.
 *
 * A file that cannot be read or parsed starts an empty book: the ages restart from now, which
 * delays a warning but never refuses a key. A failed write is reported to `onError` once.
 */
export class KeyAges {
  readonly #path: string | null;
  readonly #rotationMs: number;
  readonly #seen = new Map<string, number>();
  readonly #onError: (error: unknown) => void;
  #reported = false;

  constructor(options: {
    path: string | null;
    rotationDays: number;
    onError?: (error: unknown) => void;
  }) {
    this.#path = options.path;
    this.#rotationMs = options.rotationDays * DAY_MS;
    this.#onError = options.onError ?? (() => {});
    if (this.#path) this.#load(this.#path);
  }

  /** Notes `fingerprint` as seen at `now` unless it was seen before. */
  see(fingerprint: string, now: number): void {
    if (this.#seen.has(fingerprint)) return;
    this.#seen.set(fingerprint, now);
    this.#save();
  }

  /** The age of a fingerprint seen before, or null. */
  age(fingerprint: string, now: number): KeyAge | null {
    const first = this.#seen.get(fingerprint);
    if (first === undefined) return null;
    const ms = Math.max(0, now - first);
    return {
      firstSeenAt: iso(first),
      ageDays: Math.floor(ms / DAY_MS),
      overdue: ms > this.#rotationMs,
    };
  }

  #load(path: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    for (const [fingerprint, at] of Object.entries(parsed)) {
      const ms = typeof at === 'string' ? Date.parse(at) : Number.NaN;
      if (!FINGERPRINT.test(fingerprint) || Number.isNaN(ms)) continue;
      const known = this.#seen.get(fingerprint);
      if (known === undefined || ms < known) this.#seen.set(fingerprint, ms);
    }
  }

  #save(): void {
    if (!this.#path) return;
    // Another process (`upstream rotate`, a replica) may have added keys since the file was
    // read: its dates are merged in, and the earliest date of a key wins.
    this.#load(this.#path);
    const data = Object.fromEntries([...this.#seen].map(([f, ms]) => [f, iso(ms)]));
    const temporary = `${this.#path}.${process.pid}.tmp`;
    try {
      writeFileSync(temporary, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
      renameSync(temporary, this.#path);
    } catch (error) {
      if (!this.#reported) this.#onError(error);
      this.#reported = true;
    }
  }
}

/** The age file under `dataDir`, or null when that directory does not exist (yet). */
export function keyAgePath(dataDir: string | undefined, cwd: string): string | null {
  if (!dataDir) return null;
  const dir = resolve(cwd, dataDir);
  return existsSync(dir) ? join(dir, KEY_AGE_FILE) : null;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
