import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { looksBinary, type ScanSession, scanPieces, type TextOrigin } from './content.js';
import type { ScanFinding } from './types.js';

const GZIP_MAGIC = [0x1f, 0x8b];
const PIECE = 1024 * 1024;

/** Options of a log or stdin scan. */
export interface StreamScanOptions {
  includeBinary?: boolean;
}

// Bytes in, gunzipped when they start with the gzip magic number, whatever the file is called.
async function* plainBytes(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const iterator = input[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  while (head.length < GZIP_MAGIC.length) {
    const next = await iterator.next();
    if (next.done) break;
    head = Buffer.concat([head, next.value]);
  }
  if (head.length === 0) return;
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      yield next.value;
    }
  }
  if (head[0] !== GZIP_MAGIC[0] || head[1] !== GZIP_MAGIC[1]) {
    yield* all();
    return;
  }
  const gunzip = createGunzip();
  // The pipeline destroys the gunzip stream on any failure, which ends the loop below with it.
  pipeline(Readable.from(all()), gunzip).catch(() => {});
  yield* gunzip as AsyncIterable<Buffer>;
}

async function scanBytes(
  input: AsyncIterable<Buffer>,
  origin: TextOrigin,
  session: ScanSession,
  options: StreamScanOptions,
): Promise<ScanFinding[] | null> {
  const decoder = new StringDecoder('utf8');
  const bytes = plainBytes(input)[Symbol.asyncIterator]();
  const first = await bytes.next();
  if (first.done) return [];
  if (looksBinary(first.value) && !options.includeBinary) return null;
  async function* text(): AsyncGenerator<string> {
    yield decoder.write(first.value as Buffer);
    for (let next = await bytes.next(); !next.done; next = await bytes.next()) {
      yield decoder.write(next.value);
    }
    yield decoder.end();
  }
  return scanPieces(text(), origin, session);
}

/**
 * Scans log files, plain or gzip-compressed (told by content, not name), as streams: a log of
 * any size is scanned in flat memory, with lines and columns counted in the uncompressed text.
 *
 * @example
 * const findings = await scanLogs(['app.log', 'app.log.1.gz'], session);
 */
export async function scanLogs(
  files: string[],
  session: ScanSession,
  options: StreamScanOptions = {},
): Promise<ScanFinding[]> {
  const findings: ScanFinding[] = [];
  for (const file of files) {
    const input = createReadStream(file, { highWaterMark: PIECE });
    try {
      const found = await scanBytes(input, { file, source: 'log' }, session, options);
      session.stats.files++;
      if (found === null) session.stats.skippedBinary++;
      else findings.push(...found);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (typeof code !== 'string') throw error;
      session.stats.errors++;
      session.warn(`cannot scan ${file} (${code})`);
    } finally {
      input.destroy();
    }
  }
  return findings;
}

/**
 * Scans standard input, reported as file `-`; gzip input is decompressed.
 *
 * @example
 * const findings = await scanStdin(process.stdin, session);
 */
export async function scanStdin(
  input: AsyncIterable<Buffer>,
  session: ScanSession,
  options: StreamScanOptions = {},
): Promise<ScanFinding[]> {
  const found = await scanBytes(input, { file: '-', source: 'stdin' }, session, options);
  session.stats.files++;
  if (found === null) session.stats.skippedBinary++;
  return found ?? [];
}
