// Requests that are wrong on the HTTP side: paths and methods outside the inspected surface,
// authorization that must not pass, header blocks the parser must refuse, request lines no server
// speaks, and bodies that end before their announced length. Raw cases go out as bytes on their
// own connection, since a well-behaved client refuses to send them.
import { ENDPOINTS } from './fuzz-bodies.js';
import { type CaseContext, type FuzzCase, jsonHeaders, pick } from './fuzz-case.js';

/** A body that is wrong whatever the endpoint, so only the HTTP side decides the status. */
const WRONG_BODY = '{"model":1}';

function pooled(
  category: string,
  headers: Record<string, string>,
  extra: Partial<Extract<FuzzCase, { transport: 'pool' }>> = {},
): FuzzCase {
  return {
    category,
    transport: 'pool',
    method: 'POST',
    path: '/v1/chat/completions',
    headers,
    body: WRONG_BODY,
    ...extra,
  };
}

/** Paths and methods outside the inspected surface, always with a body that is itself wrong. */
export function pathAndMethod(ctx: CaseContext): FuzzCase {
  const path = pick(ctx.random, [
    '/v1/chat/completions/',
    '/v1//chat/completions',
    '/V1/chat/completions',
    '/v1/chat/completions%00',
    '/v1/chat/%2e%2e/completions',
    '/v1/../admin/keys',
    '/admin/keys',
    '/v2/chat/completions',
    `/v1/${'x'.repeat(3000)}`,
    '/v1/chat/completions?stream=true',
    '/v1/models/../../etc/passwd',
    '/%ff%fe',
  ]);
  const method = pick(ctx.random, ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const);
  const body = method === 'GET' || method === 'OPTIONS' ? undefined : WRONG_BODY;
  return pooled('path-method', jsonHeaders(ctx), { method, path, body });
}

/** Authorization headers that must not pass, with a body that is wrong anyway. */
export function badAuth(ctx: CaseContext): FuzzCase {
  const value = pick(ctx.random, [
    null,
    'Basic bWlzdHJhbDpndWFyZA==',
    'Bearer',
    `Token ${ctx.key}`,
    `Bearer ${ctx.key}x`,
    `Bearer ${ctx.key.slice(0, -1)}`,
    `Bearer ${ctx.upstreamKey}`,
    `Bearer mg_${'A'.repeat(40)}`,
    `Bearer ${ctx.key}, Bearer ${ctx.key}`,
    `Bearer ${'z'.repeat(4000)}`,
    'Digest username="guard", realm="x"',
    `Bearer  ${ctx.key}`,
    `BEARER ${ctx.key}`,
  ]);
  const headers = jsonHeaders(ctx);
  if (value === null) delete headers.authorization;
  else headers.authorization = value;
  if (ctx.random() < 0.3) headers['x-api-key'] = ctx.key;
  return pooled('bad-auth', headers);
}

/** Many headers that still fit the header limit, then a wrong body. */
export function manyHeaders(ctx: CaseContext): FuzzCase {
  const headers = jsonHeaders(ctx);
  const count = 20 + Math.floor(ctx.random() * 150);
  for (let i = 0; i < count; i++) headers[`x-fuzz-${i}`] = `v${i}`;
  return pooled('many-headers', headers, { path: '/v1/embeddings' });
}

/** The head of a valid request, plus `lines`, ready for a body. */
function rawHead(ctx: CaseContext, lines: string[], contentLength?: number): string {
  const head = [
    'POST /v1/chat/completions HTTP/1.1',
    'Host: 127.0.0.1',
    `Authorization: Bearer ${ctx.key}`,
    'Content-Type: application/json',
    `X-Request-Id: ${ctx.requestId}`,
    'Connection: close',
    ...(contentLength === undefined ? [] : [`Content-Length: ${contentLength}`]),
    ...lines,
  ];
  return `${head.join('\r\n')}\r\n\r\n`;
}

function raw(bytes: Buffer | string, mayCloseSilently = false): FuzzCase {
  const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  return { category: 'header-abuse', transport: 'raw', bytes: buffer, mayCloseSilently };
}

/** One header far past the limit, or thousands of small ones. */
function oversized(ctx: CaseContext): FuzzCase {
  if (ctx.random() < 0.5) {
    const big = `X-Big: ${'h'.repeat(17_000 + ctx.random() * 50_000)}`;
    return raw(rawHead(ctx, [big], WRONG_BODY.length) + WRONG_BODY);
  }
  const count = 2100 + Math.floor(ctx.random() * 2000);
  const many = Array.from({ length: count }, (_, i) => `X-M${i}: ${i}`);
  return raw(rawHead(ctx, many, WRONG_BODY.length) + WRONG_BODY);
}

const NON_ASCII = [[0xc3, 0xa9], [0xff], [0xe9], [0x80, 0x81], [0xf0, 0x9f, 0x92, 0xa9]];

/** Bytes outside the header grammar: non-ASCII values, bad names, control characters. */
function malformedHeader(ctx: CaseContext): FuzzCase {
  const head = rawHead(ctx, [], WRONG_BODY.length).slice(0, -2);
  const variant = Math.floor(ctx.random() * 4);
  if (variant === 0) {
    const name = pick(ctx.random, ['X-Name', 'User-Agent', 'Authorization', 'Content-Type']);
    return raw(
      Buffer.concat([
        Buffer.from(`${head}${name}: a`),
        Buffer.from(pick(ctx.random, NON_ASCII)),
        Buffer.from(`\r\n\r\n${WRONG_BODY}`),
      ]),
    );
  }
  const line =
    variant === 1
      ? `${pick(ctx.random, ['X-Na me', 'X-\u00d1', 'X()', '', 'X:Y', 'X\u0000'])}: v`
      : variant === 2
        ? pick(ctx.random, [
            'X-A: a\0b',
            'X-A: a\r b',
            'X-A: a\n b',
            'X-A: a\r\n folded',
            'X-A: \x7f',
          ])
        : pick(ctx.random, [
            'Transfer-Encoding: chunked',
            'Content-Length: 12',
            'Content-Length: -1',
            'Content-Length: abc',
            'Transfer-Encoding: gzip, chunked',
          ]);
  return raw(`${head}${line}\r\n\r\n${WRONG_BODY}`);
}

/** Request lines no HTTP/1.1 server speaks, broken chunk framing, a CONNECT. */
function badFraming(ctx: CaseContext): FuzzCase {
  const variant = Math.floor(ctx.random() * 3);
  if (variant === 0) {
    const line = pick(ctx.random, [
      'FOO / HTTP/1.1',
      'GET / HTTP/9.9',
      'GET  / HTTP/1.1',
      'GET /\u0000 HTTP/1.1',
      'GET http://[::1 HTTP/1.1',
      `GET /${'u'.repeat(20_000)} HTTP/1.1`,
      'PRI * HTTP/2.0',
      'get / HTTP/1.1',
      'GET / HTTP/1.1 extra',
    ]);
    return raw(`${line}\r\nHost: x\r\nConnection: close\r\n\r\n`);
  }
  if (variant === 1) {
    const size = pick(ctx.random, ['zz', '-1', 'fffffffffffffffff', '5;\0']);
    const head = rawHead(ctx, ['Transfer-Encoding: chunked']);
    return raw(`${head}${size}\r\nabcde\r\n0\r\n\r\n`);
  }
  // Without a 'connect' listener Node drops the connection: no answer is a fair answer.
  const connect = 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n';
  return raw(connect, true);
}

/** Header blocks the HTTP layer must refuse: too large, malformed, badly framed. */
export function headerAbuse(ctx: CaseContext): FuzzCase {
  const roll = ctx.random();
  if (roll < 0.25) return oversized(ctx);
  if (roll < 0.65) return malformedHeader(ctx);
  return badFraming(ctx);
}

/** A body shorter than its Content-Length (or unterminated chunks), then the client leaves. */
export function earlyEnd(ctx: CaseContext): FuzzCase {
  const text = JSON.stringify(ENDPOINTS[0]!.base);
  const sent = text.slice(0, Math.floor(ctx.random() * text.length));
  let bytes: string;
  if (ctx.random() < 0.75) {
    bytes = rawHead(ctx, [], text.length + 1 + Math.floor(ctx.random() * 10_000)) + sent;
  } else {
    const head = rawHead(ctx, ['Transfer-Encoding: chunked']);
    bytes = `${head}${sent.length.toString(16)}\r\n${sent}\r\n`;
  }
  return {
    category: 'early-end',
    transport: 'raw',
    bytes: Buffer.from(bytes),
    halfClose: true,
    mayCloseSilently: true,
  };
}
