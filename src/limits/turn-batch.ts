/** The most requests in one batch: the Redis scripts `unpack` them, and Lua's stack is bounded. */
const MAX_BATCH = 500;

interface Pending<Request, Result> {
  request: Request;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}

/**
 * Gathers the requests made in one turn of the event loop, by group, and sends each group at the
 * end of the turn in batches of at most 500, in the order they were made. `send` answers a batch
 * with one result per request, in order; when it throws, every request of the batch rejects.
 *
 * @example
 * const reserves = new TurnBatch((batch: ReserveRequest[]) => runScript(batch));
 * const counters = await reserves.add(request.keyId, request);
 */
export class TurnBatch<Request, Result> {
  readonly #send: (batch: Request[]) => Promise<Result[]>;
  #groups = new Map<string, Pending<Request, Result>[]>();
  #scheduled = false;

  constructor(send: (batch: Request[]) => Promise<Result[]>) {
    this.#send = send;
  }

  add(group: string, request: Request): Promise<Result> {
    return new Promise((resolve, reject) => {
      let pending = this.#groups.get(group);
      if (!pending) {
        pending = [];
        this.#groups.set(group, pending);
      }
      pending.push({ request, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const groups = this.#groups;
    this.#groups = new Map();
    for (const pending of groups.values()) {
      for (let start = 0; start < pending.length; start += MAX_BATCH) {
        void this.#deliver(pending.slice(start, start + MAX_BATCH));
      }
    }
  }

  async #deliver(batch: Pending<Request, Result>[]): Promise<void> {
    let results: Result[];
    try {
      results = await this.#send(batch.map((entry) => entry.request));
    } catch (error) {
      for (const entry of batch) entry.reject(error);
      return;
    }
    batch.forEach((entry, i) => {
      entry.resolve(results[i]!);
    });
  }
}
