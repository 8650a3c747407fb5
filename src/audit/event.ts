import { randomFillSync } from 'node:crypto';

/**
 * What the guard did to a request, as counts only. The matched text never appears here: a
 * finding is a category name (a detector id such as `api_key` or `email`) and how often it hit.
 */
export interface AuditGuardSummary {
  /** The decision taken: `allow`, `redact` or `block`. */
  action: string;
  /** Findings per detector category. */
  findings: Record<string, number>;
}

/**
 * The bodies of a request and its answer, kept only when the operator opted in, and only as the
 * content guard left them: every finding replaced, whatever action the request's policy took.
 * Each is JSON text, cut at the configured size (then it no longer parses).
 */
export interface AuditBodies {
  request: string | null;
  response: string | null;
  /** True when either text was cut. */
  truncated: boolean;
}

/**
 * One audit event: one per request that reached the gateway, whatever its outcome. Absent values
 * are `null`, never missing, so every event has the same shape and the same canonical JSON; the
 * one exception is `bodies`, absent unless stored, so trails written before it existed keep
 * their hashes.
 */
export interface AuditEvent {
  /** A UUIDv7: sorts by creation time as text. */
  id: string;
  /** When the event was recorded (the end of the request), ISO 8601 in UTC. */
  time: string;
  requestId: string;
  /** What was asked: `chat.complete`, `embeddings.create`, `models.list`, `passthrough`, ... */
  action: string;
  method: string;
  /** The request path without its query string. */
  path: string;
  keyId: string | null;
  keyName: string | null;
  environment: string | null;
  model: string | null;
  stream: boolean;
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
  success: boolean;
  /** The HTTP status the client received. */
  status: number;
  errorCode: string | null;
  /** The status Mistral answered with, when the request went upstream. */
  upstreamStatus: number | null;
  clientIp: string | null;
  userAgent: string | null;
  latencyMs: number;
  guard: AuditGuardSummary | null;
  bodies?: AuditBodies;
}

/** The fields every event has (all but `bodies`), in the order they are declared. */
export const AUDIT_EVENT_FIELDS = [
  'id',
  'time',
  'requestId',
  'action',
  'method',
  'path',
  'keyId',
  'keyName',
  'environment',
  'model',
  'stream',
  'promptTokens',
  'completionTokens',
  'totalTokens',
  'success',
  'status',
  'errorCode',
  'upstreamStatus',
  'clientIp',
  'userAgent',
  'latencyMs',
  'guard',
] as const satisfies ReadonlyArray<keyof AuditEvent>;

/**
 * What a caller hands to a sink. `id` and `time` are assigned on recording; optional fields
 * default to `null`. Extra properties are allowed by design and are dropped by `toAuditRecord`.
 */
export type AuditEventInput = Pick<AuditEvent, 'requestId' | 'action' | 'method' | 'path'> &
  Partial<Omit<AuditEvent, 'id' | 'time' | 'requestId' | 'action' | 'method' | 'path'>>;

/** The most characters each text field keeps; longer values are cut, never rejected. */
export const AUDIT_FIELD_LIMITS = {
  requestId: 128,
  action: 64,
  method: 16,
  path: 512,
  keyId: 64,
  keyName: 128,
  environment: 64,
  model: 128,
  errorCode: 64,
  clientIp: 64,
  userAgent: 256,
  guardAction: 32,
  guardCategory: 64,
} as const;

/** At most this many guard categories are kept, so a runaway detector cannot bloat the row. */
const MAX_GUARD_CATEGORIES = 32;
const CATEGORY_NAME = /^[A-Za-z0-9_.:-]+$/;

/**
 * Builds the stored event from a caller's input by copying an explicit allow-list of fields.
 * Anything not named below (an API key, a header, a prompt) cannot reach the audit store, even
 * if a later change adds it to the input object. Types are checked as values are copied: the
 * table is STRICT, so one badly typed value would otherwise fail the whole batch it travels in.
 */
export function toAuditRecord(input: AuditEventInput, now: Date = new Date()): AuditEvent {
  const L = AUDIT_FIELD_LIMITS;
  const requestId = text(input.requestId, L.requestId) ?? '';
  return {
    id: newEventId(now.getTime()),
    time: now.toISOString(),
    requestId,
    action: text(input.action, L.action) ?? 'unknown',
    method: text(input.method, L.method) ?? '',
    path: text(stripQuery(input.path), L.path) ?? '',
    keyId: text(input.keyId, L.keyId),
    keyName: text(input.keyName, L.keyName),
    environment: text(input.environment, L.environment),
    model: text(input.model, L.model),
    stream: input.stream === true,
    promptTokens: count(input.promptTokens),
    completionTokens: count(input.completionTokens),
    totalTokens: count(input.totalTokens),
    success: input.success === true,
    status: httpStatus(input.status) ?? 0,
    errorCode: text(input.errorCode, L.errorCode),
    upstreamStatus: httpStatus(input.upstreamStatus),
    clientIp: text(input.clientIp, L.clientIp),
    userAgent: text(input.userAgent, L.userAgent),
    latencyMs: latency(input.latencyMs),
    guard: guardSummary(input.guard),
    ...storedBodies(input.bodies),
  };
}

/** The most characters of each stored body, whatever the caller passed. */
const MAX_STORED_BODY = 1024 * 1024;

function storedBodies(value: unknown): { bodies?: AuditBodies } {
  if (typeof value !== 'object' || value === null) return {};
  const raw = value as { request?: unknown; response?: unknown; truncated?: unknown };
  const request = text(raw.request, MAX_STORED_BODY);
  const response = text(raw.response, MAX_STORED_BODY);
  if (request === null && response === null) return {};
  const cut =
    (typeof raw.request === 'string' && raw.request.length > MAX_STORED_BODY) ||
    (typeof raw.response === 'string' && raw.response.length > MAX_STORED_BODY);
  return { bodies: { request, response, truncated: raw.truncated === true || cut } };
}

/**
 * Cuts a string to `max` UTF-16 units without leaving half of a surrogate pair behind. NUL
 * becomes U+FFFD: PostgreSQL text cannot hold it, and one such value (a model name a client
 * made up) would otherwise fail every batch it travels in.
 */
function text(value: unknown, max: number): string | null {
  if (typeof value !== 'string') return null;
  const clean = value.includes('\0') ? value.replaceAll('\0', '\uFFFD') : value;
  if (clean.length <= max) return clean;
  const cut = clean.slice(0, max);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

/** Query strings are where clients put keys (`?key=...`), so they never reach the store. */
function stripQuery(path: unknown): unknown {
  if (typeof path !== 'string') return path;
  const end = path.search(/[?#]/);
  return end === -1 ? path : path.slice(0, end);
}

function count(value: unknown): number | null {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return null;
  return Math.min(Math.trunc(value), Number.MAX_SAFE_INTEGER);
}

function httpStatus(value: unknown): number | null {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 999) {
    return null;
  }
  return value;
}

function latency(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return 0;
  return Math.round(value * 100) / 100;
}

function guardSummary(value: unknown): AuditGuardSummary | null {
  if (typeof value !== 'object' || value === null) return null;
  const raw = value as { action?: unknown; findings?: unknown };
  const findings: Record<string, number> = {};
  if (typeof raw.findings === 'object' && raw.findings !== null) {
    let kept = 0;
    for (const [name, hits] of Object.entries(raw.findings)) {
      if (kept === MAX_GUARD_CATEGORIES) break;
      const n = count(hits);
      if (n === null || name.length > AUDIT_FIELD_LIMITS.guardCategory) continue;
      if (!CATEGORY_NAME.test(name)) continue;
      findings[name] = n;
      kept++;
    }
  }
  return { action: text(raw.action, AUDIT_FIELD_LIMITS.guardAction) ?? 'unknown', findings };
}

// UUIDv7 state: within one millisecond the 12-bit counter in `rand_a` increases, so ids made by
// this process sort in creation order even when thousands share a millisecond (RFC 9562, 6.2).
let lastMs = 0;
let counter = 0;
const pool = Buffer.alloc(16 * 256);
let poolOffset = pool.length;

/** Returns a new UUIDv7; ids from one process are strictly increasing as text. */
export function newEventId(nowMs: number = Date.now()): string {
  let ms = nowMs;
  if (ms > lastMs) {
    lastMs = ms;
    // A random start leaves room for at least 3,072 more ids in the same millisecond.
    counter = take(2).readUInt16BE(0) & 0x3ff;
  } else {
    // Same millisecond, or the clock went back: keep counting from the last id.
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      lastMs = ++ms;
      counter = 0;
    }
  }
  const b = Buffer.from(take(16));
  b.writeUIntBE(ms, 0, 6);
  b[6] = 0x70 | (counter >> 8);
  b[7] = counter & 0xff;
  b[8] = 0x80 | (b[8]! & 0x3f);
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Random bytes from a pool refilled 4 KiB at a time: one syscall per ~250 ids, not per id. */
function take(n: number): Buffer {
  if (poolOffset + n > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += n;
  return pool.subarray(poolOffset - n, poolOffset);
}
