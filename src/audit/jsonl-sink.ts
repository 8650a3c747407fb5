import type { FileHandle } from 'node:fs/promises';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AuditEvent } from './event.js';
import type { EventWriter } from './sink.js';

/**
 * The JSON-lines sink: one event per line, in the stored event shape, for shipping to a SIEM.
 * A file is appended to and fsynced per batch, so a resolved batch survives a crash. Standard
 * output counts a batch as written once the stream accepted it: a pipe cannot be synced.
 *
 * A batch that failed is written again from the spool when the file recovers, and part of it
 * may already be there: readers should treat `id` as unique and drop repeats.
 *
 * @example
 * const writer = await openJsonlWriter('/var/log/mistral-guard/audit.jsonl');
 * const stdout = await openJsonlWriter('-');
 */
export async function openJsonlWriter(path: string): Promise<EventWriter> {
  if (path === '-') return stdoutWriter(process.stdout);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let file: FileHandle | null = await open(path, 'a', 0o600);
  return {
    name: 'jsonl',
    async write(events) {
      // Reopened after a failure: the disk may have been full, or the file rotated away.
      file ??= await open(path, 'a', 0o600);
      const data = Buffer.from(lines(events));
      try {
        await file.write(data, 0, data.length, null);
        await file.datasync();
      } catch (error) {
        const broken = file;
        file = null;
        await broken.close().catch(() => {});
        throw error;
      }
    },
    async close() {
      await file?.close();
      file = null;
    },
  };
}

function lines(events: readonly AuditEvent[]): string {
  return events.map((event) => `${JSON.stringify(event)}\n`).join('');
}

/** The JSONL sink on a stream such as stdout. */
export function stdoutWriter(stream: NodeJS.WritableStream): EventWriter {
  return {
    name: 'jsonl',
    write(events) {
      return new Promise((resolve, reject) => {
        stream.write(lines(events), (error) => (error ? reject(error) : resolve()));
      });
    },
    async close() {},
  };
}
