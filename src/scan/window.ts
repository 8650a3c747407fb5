/**
 * Positions in scanned text: offsets to 1-based lines and columns, the text of a span, and which
 * lines carry an inline allow comment. Text arrives in pieces (a whole file is one piece, a log
 * is many) and only a bounded tail is kept, so a multi-gigabyte log is located in flat memory.
 * Lines are split on `\n` only: a CRLF file counts lines as git and editors do, and its `\r`
 * stays at the end of the line, after every column that matters.
 */

/** The inline comment that accepts every finding on its line. */
export const ALLOW_MARKER = 'mistral-guard:allow';

/** A 1-based line and column; columns count UTF-16 code units, as SARIF does by default. */
export interface Position {
  line: number;
  column: number;
}

interface Piece {
  start: number;
  text: string;
  /** Line number at `start`. */
  line: number;
  /** Offset where the line holding `start` begins. */
  lineStart: number;
  /** Offsets of the `\n` characters in this piece, built on first use. */
  newlines?: number[];
}

function newlinesOf(piece: Piece): number[] {
  if (piece.newlines) return piece.newlines;
  const found: number[] = [];
  for (let i = piece.text.indexOf('\n'); i >= 0; i = piece.text.indexOf('\n', i + 1)) {
    found.push(piece.start + i);
  }
  piece.newlines = found;
  return found;
}

function countBefore(sorted: number[], offset: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Text kept for locating findings; see the module comment. */
export class TextWindow {
  #pieces: Piece[] = [];
  #length = 0;
  #line = 1;
  #lineStart = 0;
  #tail = '';
  #allowLines = new Set<number>();

  /** Characters appended so far. */
  get length(): number {
    return this.#length;
  }

  /** Appends the next piece of text. */
  push(text: string): void {
    if (text.length === 0) return;
    const piece: Piece = {
      start: this.#length,
      text,
      line: this.#line,
      lineStart: this.#lineStart,
    };
    this.#pieces.push(piece);
    this.#length += text.length;
    const last = text.lastIndexOf('\n');
    if (last >= 0) {
      this.#line += newlinesOf(piece).length;
      this.#lineStart = piece.start + last + 1;
    }
    this.#findMarkers(piece);
  }

  // The marker may straddle two pieces: the seam (the previous tail and the start of this
  // piece) is searched on its own, so the piece itself is never copied.
  #findMarkers(piece: Piece): void {
    const seam = this.#tail + piece.text.slice(0, ALLOW_MARKER.length - 1);
    const seamAt = seam.indexOf(ALLOW_MARKER);
    if (seamAt >= 0)
      this.#allowLines.add(this.position(piece.start - this.#tail.length + seamAt).line);
    const text = piece.text;
    for (let i = text.indexOf(ALLOW_MARKER); i >= 0; i = text.indexOf(ALLOW_MARKER, i + 1)) {
      this.#allowLines.add(this.position(piece.start + i).line);
    }
    this.#tail = (this.#tail + text.slice(-(ALLOW_MARKER.length - 1))).slice(
      -(ALLOW_MARKER.length - 1),
    );
  }

  #pieceAt(offset: number): Piece {
    const pieces = this.#pieces;
    for (let k = pieces.length - 1; k >= 0; k--) {
      if (pieces[k]!.start <= offset) return pieces[k]!;
    }
    throw new RangeError('offset is before the text kept for locating findings');
  }

  /** Line and column of the character at `offset` (or just past the end). */
  position(offset: number): Position {
    const piece = this.#pieceAt(offset);
    const newlines = newlinesOf(piece);
    const before = countBefore(newlines, offset);
    const lineStart = before > 0 ? newlines[before - 1]! + 1 : piece.lineStart;
    return { line: piece.line + before, column: offset - lineStart + 1 };
  }

  /** The text of `[start, end)`, which must still be kept. */
  slice(start: number, end: number): string {
    let out = '';
    for (const piece of this.#pieces) {
      const pieceEnd = piece.start + piece.text.length;
      if (pieceEnd <= start || piece.start >= end) continue;
      out += piece.text.slice(Math.max(0, start - piece.start), end - piece.start);
    }
    return out;
  }

  /** True when `line` carries the inline allow comment. */
  allows(line: number): boolean {
    return this.#allowLines.has(line);
  }

  /**
   * Drops pieces that end before `offset`, keeping the last one. Positions and spans before the
   * first kept piece can no longer be asked for.
   */
  forget(offset: number): void {
    const pieces = this.#pieces;
    let drop = 0;
    while (drop < pieces.length - 1 && pieces[drop]!.start + pieces[drop]!.text.length <= offset) {
      drop++;
    }
    if (drop === 0) return;
    pieces.splice(0, drop);
    const firstLine = pieces[0]!.line;
    for (const line of this.#allowLines) if (line < firstLine) this.#allowLines.delete(line);
  }
}
