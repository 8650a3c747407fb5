import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import sjson from 'secure-json-parse';
import { GuardError } from '../errors.js';

// Fatal decoding: a body with invalid UTF-8 is refused rather than silently repaired, so what
// the guard inspects is byte for byte what the caller meant.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** True for `application/json`, with or without parameters such as `charset=utf-8`. */
export function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const semi = header.indexOf(';');
  const type = (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase();
  if (type !== 'application/json') return false;
  if (semi === -1) return true;
  const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(header.slice(semi))?.[1];
  return charset === undefined || charset.toLowerCase() === 'utf-8';
}

/** A Content-Encoding that leaves the body as it is. */
const IDENTITY = /^\s*(?:identity)?\s*$/i;

/**
 * Refuses a body sent compressed: any Content-Encoding but identity, or a Transfer-Encoding
 * other than chunked (`gzip, chunked`). The gateway inspects the bytes as they arrive: a
 * compressed body would be read as broken JSON, or forwarded without the header that says how
 * to read it.
 */
export function refuseEncodedBody(headers: IncomingHttpHeaders): void {
  const content = headers['content-encoding'];
  const transfer = headers['transfer-encoding'];
  const encoded =
    (content !== undefined && !IDENTITY.test(content)) ||
    transfer?.split(',').some((c) => c.trim().toLowerCase() !== 'chunked') === true;
  if (!encoded) return;
  throw new GuardError('unsupported_media_type', {
    message:
      'Compressed request bodies (Content-Encoding, Transfer-Encoding) are not supported: send it uncompressed.',
  });
}

/**
 * Reads a request body into memory, refusing it as soon as it passes `limit` bytes, so a
 * hostile client cannot make the gateway buffer more than the profile allows.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new GuardError('body_too_large', { headers: { connection: 'close' } }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (error: Error | null, value?: Buffer) => {
      if (settled) return;
      settled = true;
      req.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onAborted);
      req.off('close', onClose);
      if (error) reject(error);
      else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish(new GuardError('body_too_large', { headers: { connection: 'close' } }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () =>
      finish(null, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onError = (cause: Error) => finish(new GuardError('client_closed', { cause }));
    const onAborted = () => finish(new GuardError('client_closed'));
    const onClose = () => {
      if (!req.complete) finish(new GuardError('client_closed'));
    };
    req.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onAborted);
    req.on('close', onClose);
  });
}

/**
 * Parses a JSON body. Refuses invalid UTF-8, and `__proto__` or `constructor.prototype` keys,
 * which have no meaning in the API and are the usual prototype-pollution vehicle.
 */
export function parseJsonBody(raw: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new GuardError('invalid_json', { message: 'The request body is not valid UTF-8.' });
  }
  if (text.trim() === '') {
    throw new GuardError('invalid_json', { message: 'The request body is empty.' });
  }
  try {
    return sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (error) {
    const forbidden = error instanceof SyntaxError && /prototype/i.test(error.message);
    throw new GuardError('invalid_json', {
      message: forbidden
        ? 'The request body contains a forbidden key (__proto__ or constructor.prototype).'
        : 'The request body is not valid JSON.',
    });
  }
}
