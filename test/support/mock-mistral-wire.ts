// Puts replies on the wire: the live API's response headers, SSE pacing, and the fault modes.
// Every timer goes through `later`, which ties it to its response, so a closed client or a
// closed server never leaves one behind.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Fault } from './mock-mistral-directives.js';
import {
  MALFORMED_BODY,
  RATE_LIMITED_BODY,
  type Reply,
  serverErrorBody,
} from './mock-mistral-replies.js';

// Informative only: the loopback server never refuses for exceeding them.
const LIMIT_REQ_MINUTE = 60_000;
const LIMIT_TOKENS_MINUTE = 20_000_000;
// A cookie scoped like the live one, so a gateway can be tested for stripping it.
const COOKIE = 'mg_loopback_session=fake; Domain=.mistral.ai; Path=/; HttpOnly; Secure';

// Destroying with RST rather than FIN is what a crashed upstream looks like to a client.
function resetSocket(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** Writes replies with live-like headers and acts out faults; one per server. */
export class Wire {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly idPrefix = randomBytes(12).toString('hex');
  private counter = 0;
  private minute = 0;
  private requestsThisMinute = 0;
  private tokensThisMinute = 0;

  constructor(private readonly chunkDelayMs: number) {}

  /** A fresh 32-hex-digit ID, the form the live API uses for completions and request IDs. */
  nextId(): string {
    this.counter = (this.counter + 1) >>> 0;
    return this.idPrefix + this.counter.toString(16).padStart(8, '0');
  }

  /** Runs `fn` after `ms` unless the response closes first or the server shuts down. */
  later(res: ServerResponse, ms: number, fn: () => void): void {
    const cancel = (): void => {
      clearTimeout(timer);
      this.timers.delete(timer);
    };
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      res.off('close', cancel);
      fn();
    }, ms);
    this.timers.add(timer);
    res.once('close', cancel);
  }

  /** Cancels every pending timer; called by `close()`. */
  clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Headers of every answer: rate-limit counters, a Kong request ID and a `.mistral.ai` cookie. */
  headers(contentType: string, tokens: number, length?: number): OutgoingHttpHeaders {
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== this.minute) {
      this.minute = minute;
      this.requestsThisMinute = 0;
      this.tokensThisMinute = 0;
    }
    this.requestsThisMinute++;
    this.tokensThisMinute += tokens;
    const headers: OutgoingHttpHeaders = {
      'content-type': contentType,
      'x-ratelimit-limit-req-minute': LIMIT_REQ_MINUTE,
      'x-ratelimit-remaining-req-minute': Math.max(0, LIMIT_REQ_MINUTE - this.requestsThisMinute),
      'x-ratelimit-limit-tokens-minute': LIMIT_TOKENS_MINUTE,
      'x-ratelimit-remaining-tokens-minute': Math.max(
        0,
        LIMIT_TOKENS_MINUTE - this.tokensThisMinute,
      ),
      'x-ratelimit-tokens-query-cost': tokens,
      'x-kong-request-id': this.nextId(),
      'x-kong-upstream-latency': 1,
      'x-kong-proxy-latency': 0,
      'set-cookie': COOKIE,
    };
    if (length !== undefined) headers['content-length'] = length;
    return headers;
  }

  /** Sends a complete JSON body; `extra` overrides or adds headers. */
  sendJson(
    res: ServerResponse,
    status: number,
    body: string,
    tokens = 0,
    extra?: OutgoingHttpHeaders,
  ): void {
    const headers = this.headers('application/json', tokens, Buffer.byteLength(body));
    res.writeHead(status, extra ? Object.assign(headers, extra) : headers);
    res.end(body);
  }

  /** Sends `reply()` as it is, or acts out `fault`; the reply is only built when it is needed. */
  deliver(req: IncomingMessage, res: ServerResponse, reply: () => Reply, fault?: Fault): void {
    switch (fault?.mode) {
      case undefined:
        this.send(res, reply());
        break;
      case '500': {
        const status = fault.status ?? 500;
        const retryAfter =
          fault.retryAfterSeconds === undefined
            ? undefined
            : { 'retry-after': String(fault.retryAfterSeconds) };
        this.sendJson(res, status, serverErrorBody(status), 0, retryAfter);
        break;
      }
      case '429':
        this.sendJson(res, 429, RATE_LIMITED_BODY, 0, {
          'retry-after': String(fault.retryAfterSeconds ?? 1),
          'x-ratelimit-remaining-req-minute': 0,
        });
        break;
      case 'reset':
        resetSocket(req.socket);
        break;
      case 'hang':
        break;
      case 'malformed':
        this.sendJson(res, 200, MALFORMED_BODY);
        break;
      case 'slow-first-byte':
        this.later(res, fault.delayMs ?? 1000, () => this.send(res, reply()));
        break;
      case 'stream-cut':
        this.sendPart(res, reply(), true);
        break;
      case 'stream-stall':
        this.sendPart(res, reply(), false);
        break;
    }
  }

  private send(res: ServerResponse, reply: Reply): void {
    if (reply.kind === 'json') {
      this.sendJson(res, reply.status, reply.body, reply.tokens);
      return;
    }
    res.writeHead(200, this.sseHeaders(reply.tokens));
    // Without a delay one write is both fastest and what a benchmark baseline should measure.
    if (this.chunkDelayMs <= 0) res.end(reply.events.join(''));
    else this.drip(res, reply.events, 0);
  }

  private sseHeaders(tokens: number): OutgoingHttpHeaders {
    const headers = this.headers('text/event-stream', tokens);
    headers['cache-control'] = 'no-cache';
    return headers;
  }

  private drip(res: ServerResponse, events: string[], i: number): void {
    if (res.destroyed) return;
    if (i === events.length - 1) {
      res.end(events[i]);
      return;
    }
    res.write(events[i]);
    this.later(res, this.chunkDelayMs, () => this.drip(res, events, i + 1));
  }

  // The first events of a stream, or the first half of a JSON body; then the socket is cut or
  // simply left open. The cut waits for the write to flush so the client sees the data first.
  private sendPart(res: ServerResponse, reply: Reply, cut: boolean): void {
    let part: string | Buffer;
    if (reply.kind === 'sse') {
      res.writeHead(200, this.sseHeaders(reply.tokens));
      const n = cut ? Math.max(1, Math.min(2, reply.events.length - 2)) : 1;
      part = reply.events.slice(0, n).join('');
    } else {
      const body = Buffer.from(reply.body);
      res.writeHead(reply.status, this.headers('application/json', reply.tokens, body.length));
      part = body.subarray(0, body.length >> 1);
    }
    res.write(part, () => {
      if (cut) res.socket?.destroy();
    });
  }
}
