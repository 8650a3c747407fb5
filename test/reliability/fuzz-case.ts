// What a fuzz case is, and the pieces every generator shares. Each case is built so that it is
// wrong for a reason the gateway must see on its own: the oracle is the generators, never the
// gateway's schemas. A case that could be valid by accident is a bug in a generator, not a finding.

/** One request to send: through the keep-alive pool, or as raw bytes on a fresh connection. */
export type FuzzCase =
  | {
      category: string;
      transport: 'pool';
      method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS';
      path: string;
      headers: Record<string, string>;
      body?: string | Buffer;
    }
  | {
      category: string;
      transport: 'raw';
      bytes: Buffer;
      /** End the client's side after writing, so a short body ends early. */
      halfClose?: boolean;
      /** The server may close without answering (a body cut short, a CONNECT). */
      mayCloseSilently?: boolean;
    };

/** What a generator needs: randomness, the valid key, the id the answer must carry. */
export interface CaseContext {
  random: () => number;
  key: string;
  /** A key-shaped secret the gateway must not accept as a client key. */
  upstreamKey: string;
  requestId: string;
  /** The profile's body limit, so "near" and "over" mean something. */
  maxBodyBytes: number;
}

/** A generator: the `index`-th case of a run, drawn from `ctx.random`. */
export type Generator = (ctx: CaseContext, index: number) => FuzzCase;

/** One element of `list`, drawn from `random`. */
export function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)]!;
}

/** The headers of a request that is well formed on the HTTP side. */
export function jsonHeaders(
  ctx: CaseContext,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    authorization: `Bearer ${ctx.key}`,
    'content-type': 'application/json',
    'x-request-id': ctx.requestId,
    ...extra,
  };
}

/** A POST of `body` with valid headers: whatever is wrong is in the body. */
export function post(
  category: string,
  ctx: CaseContext,
  path: string,
  body: string | Buffer,
): FuzzCase {
  return { category, transport: 'pool', method: 'POST', path, headers: jsonHeaders(ctx), body };
}
