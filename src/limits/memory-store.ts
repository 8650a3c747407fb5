import type {
  BucketCounters,
  KeyCounters,
  LimitStore,
  ReserveRequest,
  SettleRequest,
  WindowPoint,
} from './types.js';
import { refusedLimits } from './window.js';

/** One key's counters; numeric fields only, updated in place on every request. */
interface KeyState {
  minute: number;
  requestsPrev: number;
  requestsCurr: number;
  tokensPrev: number;
  tokensCurr: number;
  day: number;
  tokensDay: number;
  month: number;
  tokensMonth: number;
  inFlight: number;
}

interface Bucket {
  minute: number;
  prev: number;
  curr: number;
}

/** Per-IP buckets untouched for this long are dropped, so scanning many addresses cannot grow
 * memory without bound. Two windows: after that both buckets would read as zero anyway. */
const BUCKET_IDLE_WINDOWS = 2;

/** Moves a key's minute buckets forward to `minute`, as the Redis script does. */
function roll(state: KeyState, at: WindowPoint): void {
  if (state.minute < at.minute) {
    const adjacent = state.minute === at.minute - 1;
    state.requestsPrev = adjacent ? state.requestsCurr : 0;
    state.tokensPrev = adjacent ? state.tokensCurr : 0;
    state.requestsCurr = 0;
    state.tokensCurr = 0;
    state.minute = at.minute;
  }
  if (state.day !== at.day) {
    state.day = at.day;
    state.tokensDay = 0;
  }
  if (state.month !== at.month) {
    state.month = at.month;
    state.tokensMonth = 0;
  }
}

function snapshot(state: KeyState, refused: number): KeyCounters {
  return {
    refused,
    requestsPrev: state.requestsPrev,
    requestsCurr: state.requestsCurr,
    tokensPrev: state.tokensPrev,
    tokensCurr: state.tokensCurr,
    tokensDay: state.tokensDay,
    tokensMonth: state.tokensMonth,
    inFlight: state.inFlight,
  };
}

/**
 * Limit state in this process's memory: the default, for a single replica. Concurrency is a
 * plain counter (a crashed process takes its slots with it, so no lease expiry is needed).
 *
 * @example
 * const limiter = createLimiter({ store: new MemoryLimitStore() });
 */
export class MemoryLimitStore implements LimitStore {
  readonly kind = 'memory';
  readonly #keys = new Map<string, KeyState>();
  readonly #buckets = new Map<string, Bucket>();
  #sweptAt = 0;

  #state(keyId: string, at: WindowPoint): KeyState {
    let state = this.#keys.get(keyId);
    if (!state) {
      state = {
        minute: at.minute,
        requestsPrev: 0,
        requestsCurr: 0,
        tokensPrev: 0,
        tokensCurr: 0,
        day: at.day,
        tokensDay: 0,
        month: at.month,
        tokensMonth: 0,
        inFlight: 0,
      };
      this.#keys.set(keyId, state);
    }
    roll(state, at);
    return state;
  }

  async reserve(request: ReserveRequest): Promise<KeyCounters> {
    const state = this.#state(request.keyId, request.at);
    const refused = refusedLimits(
      request.limits,
      request.tokens,
      request.at.elapsed,
      state.requestsPrev,
      state.requestsCurr,
      state.tokensPrev,
      state.tokensCurr,
      state.tokensDay,
      state.tokensMonth,
      state.inFlight,
    );
    if (refused === 0) {
      state.requestsCurr += 1;
      state.tokensCurr += request.tokens;
      state.tokensDay += request.tokens;
      state.tokensMonth += request.tokens;
      state.inFlight += 1;
    }
    return snapshot(state, refused);
  }

  async settle(request: SettleRequest): Promise<void> {
    const state = this.#keys.get(request.keyId);
    if (!state) return;
    state.inFlight = Math.max(0, state.inFlight - 1);
    if (request.delta === 0) return;
    // The difference goes to the buckets the reservation was counted in, or nowhere once those
    // have slid out of every window.
    if (state.minute === request.minute) state.tokensCurr += request.delta;
    else if (state.minute === request.minute + 1) state.tokensPrev += request.delta;
    if (state.day === request.day) state.tokensDay += request.delta;
    if (state.month === request.month) state.tokensMonth += request.delta;
  }

  async hit(name: string, cost: number, at: WindowPoint): Promise<BucketCounters> {
    this.#sweep(at);
    let bucket = this.#buckets.get(name);
    if (!bucket) {
      if (cost === 0) return { prev: 0, curr: 0 };
      bucket = { minute: at.minute, prev: 0, curr: 0 };
      this.#buckets.set(name, bucket);
    }
    if (bucket.minute < at.minute) {
      bucket.prev = bucket.minute === at.minute - 1 ? bucket.curr : 0;
      bucket.curr = 0;
      bucket.minute = at.minute;
    }
    bucket.curr += cost;
    return { prev: bucket.prev, curr: bucket.curr };
  }

  async read(keyId: string, at: WindowPoint): Promise<KeyCounters> {
    return snapshot(this.#state(keyId, at), 0);
  }

  healthy(): boolean {
    return true;
  }

  async close(): Promise<void> {
    this.#keys.clear();
    this.#buckets.clear();
  }

  /** Drops idle per-IP buckets at most once a window, on the calling request's clock. */
  #sweep(at: WindowPoint): void {
    if (at.minute === this.#sweptAt) return;
    this.#sweptAt = at.minute;
    for (const [name, bucket] of this.#buckets) {
      if (bucket.minute <= at.minute - BUCKET_IDLE_WINDOWS) this.#buckets.delete(name);
    }
  }
}
