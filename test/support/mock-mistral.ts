// A Mistral-compatible server on loopback, standing in for https://api.mistral.ai in tests, the
// demo and benchmarks (there is no internet where they run). It speaks the live wire format but
// validates almost nothing: checking bodies is the gateway's job, and a lenient upstream is what
// lets a test prove the gateway refused something on its own. Upstream failures are acted out on
// demand, through `setFault` or a `[[fault:MODE]]` directive in the prompt (see `Fault`).
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import {
  type Directives,
  type Fault,
  NO_DIRECTIVES,
  parseDirectives,
} from './mock-mistral-directives.js';
import { buildCatalogue, DEFAULT_MODELS } from './mock-mistral-models.js';
import {
  type CompletionKind,
  classifyReply,
  completionReply,
  embeddingsReply,
  FILES_BODY,
  METHOD_NOT_ALLOWED_BODY,
  notFoundReply,
  ocrReply,
  okReply,
  type Reply,
  UNAUTHORIZED_BODY,
  validationReply,
} from './mock-mistral-replies.js';
import { type JsonObject, promptOf } from './mock-mistral-text.js';
import { Wire } from './mock-mistral-wire.js';

export type { Fault, FaultMode } from './mock-mistral-directives.js';
export { DEFAULT_MODELS } from './mock-mistral-models.js';
export { DEFAULT_REPLY } from './mock-mistral-replies.js';
export { estimateTokens } from './mock-mistral-text.js';

/**
 * Options of `startMockMistral`.
 *
 * - `host`, `port`: where to listen (127.0.0.1, 0 for a free port).
 * - `validKeys`: bearer keys accepted; others get 401. Omitted: every request is accepted.
 * - `models`: IDs listed by `GET /v1/models` (default `DEFAULT_MODELS`); any model is answered.
 * - `streamChunkDelayMs`: pause between SSE events (default 0: the stream goes out in one write).
 * - `tls`: PEM key and certificate to serve HTTPS instead of HTTP.
 * - `record`: keep `requests` (default true); benchmarks turn it off.
 */
export interface MockMistralOptions {
  host?: string;
  port?: number;
  validKeys?: string[];
  models?: string[];
  streamChunkDelayMs?: number;
  tls?: { key: string; cert: string };
  record?: boolean;
}

/** One request as the server received it; `path` keeps the query string. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  authorization: string | undefined;
  at: number;
}

/** A running loopback server. */
export interface MockMistral {
  /** Origin to use as the upstream base URL, e.g. `http://127.0.0.1:41234` (no `/v1`). */
  url: string;
  port: number;
  /** Every request in arrival order, refused ones included; clear it with `length = 0`. */
  requests: RecordedRequest[];
  /** Applies `f` to the next `f.count` authenticated requests (all, if no count); null clears. */
  setFault(f: Fault | null): void;
  /** Replaces the accepted keys; an empty list refuses everyone. */
  setValidKeys(keys: string[]): void;
  /** Stops listening and destroys every connection, hung ones included. */
  close(): Promise<void>;
}

const COMPLETIONS = new Map<string, CompletionKind>([
  ['/v1/chat/completions', 'chat'],
  ['/v1/fim/completions', 'fim'],
  ['/v1/agents/completions', 'agents'],
]);
const OTHER_INFERENCE = new Set([
  '/v1/embeddings',
  '/v1/moderations',
  '/v1/chat/moderations',
  '/v1/classifications',
  '/v1/chat/classifications',
  '/v1/ocr',
]);
const BEARER = 'bearer ';
const METHOD_NOT_ALLOWED: Reply = {
  kind: 'json',
  status: 405,
  body: METHOD_NOT_ALLOWED_BODY,
  tokens: 0,
};

function bearerKey(authorization: string | undefined): string | undefined {
  if (!authorization || authorization.slice(0, 7).toLowerCase() !== BEARER) return undefined;
  return authorization.slice(7);
}

// The live API answers schema failures with 422 and a pydantic detail inside `message`. Only
// unparseable JSON and a missing required field are caught here; the rest is the gateway's job.
function checkBody(body: unknown, parsed: boolean, field: string): Reply | undefined {
  if (!parsed) {
    const ctx = { error: 'Expecting value' };
    return validationReply({
      type: 'json_invalid',
      loc: ['body', 0],
      msg: 'JSON decode error',
      input: {},
      ctx,
    });
  }
  if (body === undefined) {
    return validationReply({ type: 'missing', loc: ['body'], msg: 'Field required', input: null });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    const msg = 'Input should be a valid dictionary or object to extract fields from';
    return validationReply({ type: 'model_attributes_type', loc: ['body'], msg, input: body });
  }
  if ((body as JsonObject)[field] === undefined) {
    return validationReply({
      type: 'missing',
      loc: ['body', field],
      msg: 'Field required',
      input: body,
    });
  }
  return undefined;
}

/**
 * Starts a loopback Mistral server and resolves once it is listening.
 *
 * @example
 *   const mock = await startMockMistral({ validKeys: ['real-key'] });
 *   mock.setFault({ mode: '500', status: 503, count: 1 }); // only the next request fails
 *   // ...drive the gateway at mock.url...
 *   assert.equal(mock.requests.at(-1)?.authorization, 'Bearer real-key');
 *   await mock.close();
 */
export async function startMockMistral(options: MockMistralOptions = {}): Promise<MockMistral> {
  const host = options.host ?? '127.0.0.1';
  const record = options.record !== false;
  const requests: RecordedRequest[] = [];
  const catalogue = buildCatalogue(options.models ?? DEFAULT_MODELS);
  const wire = new Wire(options.streamChunkDelayMs ?? 0);
  const sockets = new Set<Socket>();
  let validKeys = options.validKeys ? new Set(options.validKeys) : null;
  let fault: Fault | null = null;
  let faultLeft = 0;

  function takeFault(d: Directives): Fault | undefined {
    if (d.fault) return d.fault;
    const current = fault;
    if (current && --faultLeft <= 0) fault = null;
    return current ?? undefined;
  }

  function route(
    method: string,
    path: string,
    body: unknown,
    parsed: boolean,
    d: Directives,
  ): Reply {
    const kind = COMPLETIONS.get(path);
    if (kind || OTHER_INFERENCE.has(path)) {
      if (method !== 'POST') return METHOD_NOT_ALLOWED;
      const invalid = checkBody(body, parsed, kind === 'agents' ? 'agent_id' : 'model');
      if (invalid) return invalid;
      const b = body as JsonObject;
      if (kind) return completionReply(kind, b, d, wire.nextId());
      if (path === '/v1/embeddings') return embeddingsReply(b, wire.nextId());
      if (path === '/v1/ocr') return ocrReply(b);
      return classifyReply(path, b, wire.nextId());
    }
    if (method === 'GET') {
      if (path === '/v1/models') return okReply(catalogue.listBody);
      if (path.startsWith('/v1/models/')) return modelCard(path.slice('/v1/models/'.length));
      if (path.startsWith('/v1/files')) return okReply(FILES_BODY);
    }
    return notFoundReply('Not Found');
  }

  function modelCard(encoded: string): Reply {
    let id = encoded;
    try {
      id = decodeURIComponent(encoded);
    } catch {
      // A broken percent-escape is looked up as sent, and so ends in a 404 like any unknown ID.
    }
    const card = catalogue.cards.get(id);
    return card ? okReply(card) : notFoundReply(`Model not found: ${id}`);
  }

  function handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    let body: unknown;
    let parsed = true;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
        parsed = false;
      }
    }

    const authorization = req.headers.authorization;
    if (record) {
      requests.push({
        method,
        path: url,
        headers: req.headers,
        body,
        authorization,
        at: Date.now(),
      });
    }
    if (validKeys && !validKeys.has(bearerKey(authorization) ?? '')) {
      wire.sendJson(res, 401, UNAUTHORIZED_BODY);
      return;
    }

    const prompt = parsed ? promptOf(body) : '';
    const d = prompt.includes('[[') ? parseDirectives(prompt) : NO_DIRECTIVES;
    wire.deliver(req, res, () => route(method, path, body, parsed, d), takeFault(d));
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    // A client that aborts mid-body makes the request emit 'error'; without a listener that
    // would crash the test process.
    req.on('error', () => {});
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString();
      handle(req, res, raw);
    });
  }

  const server = options.tls
    ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, onRequest)
    : createHttpServer(onRequest);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, s: Socket) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const port = (server.address() as AddressInfo).port;
  const scheme = options.tls ? 'https' : 'http';
  let closing: Promise<void> | undefined;
  return {
    url: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    requests,
    setFault(f) {
      fault = f && (f.count === undefined || f.count > 0) ? f : null;
      faultLeft = f?.count ?? Number.POSITIVE_INFINITY;
    },
    setValidKeys(keys) {
      validKeys = new Set(keys);
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        wire.clearTimers();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
