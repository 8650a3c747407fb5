import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AuditError } from './errors.js';
import type { AuditEvent } from './event.js';

/** Bytes read from the spool per replay step; far more than one event ever takes. */
const READ_CHUNK = 1 << 20;
const NEWLINE = 0x0a;

/**
 * A local file holding the events a sink could not take, one JSON object per line, until they
 * are replayed into it. Appends are fsynced before they count, so a spooled event survives a
 * crash as a committed one does. A second file keeps how far replay got; it is written after
 * each replayed batch, so a crash in between replays that batch again, and the writer skips
 * what it already holds.
 */
export class Spool {
  readonly path: string;
  readonly #dir: string;
  readonly #offsetPath: string;
  readonly #maxBytes: number;
  #file: FileHandle | null = null;
  #size = 0;
  #offset = 0;
  /** An append was refused for room since the last one that fit or the last clear. */
  #refused = false;

  private constructor(dir: string, name: string, maxBytes: number) {
    this.path = join(dir, `${name}.jsonl`);
    this.#dir = dir;
    this.#offsetPath = join(dir, `${name}.offset`);
    this.#maxBytes = maxBytes;
  }

  /**
   * Opens the spool of sink `name` in `dir`. Nothing is created until the first append: a sink
   * that never fails leaves no trace. A last line cut short by a crash is dropped: its append
   * never returned, so no caller was told those events were kept.
   */
  static async open(dir: string, name: string, maxBytes: number): Promise<Spool> {
    const spool = new Spool(dir, name, maxBytes);
    const exists = await stat(spool.path).then(
      () => true,
      () => false,
    );
    if (exists) {
      spool.#file = await open(spool.path, 'a+', 0o600);
      await spool.#recover(spool.#file);
    }
    return spool;
  }

  /** Bytes on disk, replayed or not. */
  get bytes(): number {
    return this.#size;
  }

  /** True while some events wait for replay. */
  get pending(): boolean {
    return this.#offset < this.#size;
  }

  /** True once the file has reached its limit, or refused an append that did not fit. */
  full(): boolean {
    return this.#refused || this.#size >= this.#maxBytes;
  }

  /** Appends events and syncs them to disk; refuses them all when they do not fit. */
  async append(events: readonly AuditEvent[]): Promise<void> {
    const text = events.map((event) => `${JSON.stringify(event)}\n`).join('');
    const data = Buffer.from(text);
    if (this.#size + data.length > this.#maxBytes) {
      this.#refused = true;
      throw new AuditError('audit_spool_full', 'the audit spool is full');
    }
    let file = this.#file;
    try {
      if (!file) {
        await mkdir(this.#dir, { recursive: true, mode: 0o700 });
        file = await open(this.path, 'a+', 0o600);
        this.#file = file;
      }
      await file.write(data, 0, data.length, null);
      await file.datasync();
    } catch (error) {
      // Part of the data may be on disk: the next open drops a cut line, and the size is reread.
      this.#size = (await file?.stat().catch(() => null))?.size ?? this.#size;
      throw new AuditError('audit_spool_failed', 'the audit spool cannot be written', {
        cause: error,
      });
    }
    this.#size += data.length;
    this.#refused = false;
  }

  /** The next events to replay, at most `max`, and the offset just past them; null when none. */
  async read(max: number): Promise<{ events: AuditEvent[]; end: number } | null> {
    if (!this.#file || !this.pending) return null;
    const length = Math.min(READ_CHUNK, this.#size - this.#offset);
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await this.#file.read(buffer, 0, length, this.#offset);
    const events: AuditEvent[] = [];
    let start = 0;
    while (events.length < max) {
      const end = buffer.indexOf(NEWLINE, start);
      if (end === -1 || end >= bytesRead) break;
      const line = buffer.toString('utf8', start, end);
      if (line.length > 0) events.push(JSON.parse(line) as AuditEvent);
      start = end + 1;
    }
    if (start === 0) return null;
    return { events, end: this.#offset + start };
  }

  /** Records that everything before `end` was replayed. */
  async advance(end: number): Promise<void> {
    this.#offset = end;
    const temp = `${this.#offsetPath}.tmp`;
    await writeFile(temp, String(end), { mode: 0o600 });
    await rename(temp, this.#offsetPath);
  }

  /** Empties the spool once everything in it was replayed. */
  async clear(): Promise<void> {
    if (!this.#file) return;
    await this.#file.truncate(0);
    await this.#file.datasync();
    this.#size = 0;
    this.#refused = false;
    await this.advance(0);
  }

  async close(): Promise<void> {
    await this.#file?.close();
    this.#file = null;
  }

  async #recover(file: FileHandle): Promise<void> {
    const { size } = await file.stat();
    let keep = size;
    if (size > 0) {
      const tail = Buffer.alloc(Math.min(size, READ_CHUNK));
      await file.read(tail, 0, tail.length, size - tail.length);
      const last = tail.lastIndexOf(NEWLINE);
      keep = last === -1 ? size - tail.length : size - tail.length + last + 1;
    }
    if (keep !== size) {
      await file.truncate(keep);
      await file.datasync();
    }
    this.#size = keep;
    const saved = Number(await readFile(this.#offsetPath, 'utf8').catch(() => '0'));
    this.#offset = Number.isSafeInteger(saved) && saved >= 0 && saved <= keep ? saved : 0;
  }
}
