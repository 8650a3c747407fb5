import type { IncomingHttpHeaders } from 'node:http';
import { holdsSecret, safeCallerText } from './caller-text.js';

/**
 * Client headers that may reach the upstream. Everything else (cookies, forwarding and identity
 * headers, the client's own authorization) is dropped: an allow-list, so a header added by some
 * client tomorrow does not leak by default.
 */
const FORWARDED_REQUEST_HEADERS = ['accept', 'accept-language', 'user-agent'] as const;

/**
 * Upstream headers the client may see; hop-by-hop, cookies and infrastructure ids are dropped.
 * The upstream's `x-ratelimit-*` headers describe the gateway's own account, shared by every
 * virtual key, so they are replaced by the key's own figures rather than relayed.
 */
const RELAYED_RESPONSE_HEADERS = new Set(['content-type', 'retry-after']);

/**
 * Builds the headers sent upstream: allow-listed client headers plus the real key. The client's
 * headers are its own free text (a user agent with a key pasted in): what the detectors find in
 * them, and the gateway's own keys (`ownKeys`), are replaced before they leave.
 */
export function upstreamHeaders(
  client: IncomingHttpHeaders,
  upstreamKey: string,
  requestId: string,
  contentType?: string,
  ownKeys: readonly string[] = [upstreamKey],
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = client[name];
    if (typeof value === 'string') headers[name] = safeCallerText(value, ownKeys);
  }
  headers.authorization = `Bearer ${upstreamKey}`;
  headers['x-request-id'] = requestId;
  if (contentType) headers['content-type'] = contentType;
  return headers;
}

// What a Retry-After may be (RFC 9110, 10.2.3): seconds, or an HTTP date.
const RETRY_AFTER = /^(?:\d{1,10}|[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT)$/;

/** Picks the upstream response headers the client may see; a malformed Retry-After is dropped. */
export function relayedHeaders(
  upstream: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (typeof value !== 'string' || !RELAYED_RESPONSE_HEADERS.has(name)) continue;
    if (name === 'retry-after' && !RETRY_AFTER.test(value)) continue;
    headers[name] = value;
  }
  return headers;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

// Shapes of keys a careless client might send as its request id: a virtual key, a bare
// 32-character Mistral key, a provider key. Such ids are replaced, so logs never carry them.
const KEY_LIKE = /^(?:mg_|sk-|[A-Za-z0-9]{32}$)/;

/**
 * Keeps a caller's `x-request-id` when it is a plain token that holds nothing that looks like a
 * secret (a key, a card number, one of the gateway's own keys, `ownKeys`), so logs can be
 * joined up; any other id is replaced by one of the gateway's making.
 */
export function acceptRequestId(
  value: string | string[] | undefined,
  ownKeys: readonly string[] = [],
): string | null {
  if (typeof value !== 'string' || !REQUEST_ID.test(value) || KEY_LIKE.test(value)) return null;
  // Ids are unique per request, so they are scanned without being remembered.
  return holdsSecret(value, ownKeys, false) ? null : value;
}
