const QUOTE = 0x22;
const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;
const BOM = [0xef, 0xbb, 0xbf];

/**
 * Whether every double quote of a CSV byte stream stands where csv-parse (with loadCsvText's
 * options) takes it: an opening quote only at the start of a field, a closing one only before a
 * comma, the file's line end or the end of the file, `""` inside a quoted field as one quote, and
 * no quoted field left open. DuckDB's reader is laxer (it reads `"x" ` and ` "x"` as `x`), so a
 * file that fails here is parsed by csv-parse, which reports the line. Fed chunk by chunk; may
 * refuse what csv-parse takes (that file is then only parsed the slower way), never the reverse.
 *
 * The line end is the first CR, LF or CRLF of the stream, as csv-parse detects it; the caller
 * has checked that the header is the first line, so that line end is outside any quotes.
 */
export class CsvQuoteCheck {
  private inQuoted = false;
  /** Inside a quoted field, the last byte seen was a quote: closing, or the first of `""`. */
  private pendingQuote = false;
  /** The byte before the next chunk; a line feed at the start of the file. */
  private previous = LF;
  /** Bytes of a byte order mark matched at the start (0–3), or -1 once past it. */
  private bomBytes = 0;
  /** First byte of the file's line end, once known. */
  private lineEnd: number | undefined;

  /** False at the first misplaced quote. */
  feed(chunk: Buffer): boolean {
    // The reader drops a byte order mark: a quote after it opens the first field.
    while (this.bomBytes >= 0 && this.bomBytes < BOM.length && chunk.length > 0) {
      if (chunk[0] !== BOM[this.bomBytes]) this.bomBytes = -1;
      else [this.bomBytes, chunk] = [this.bomBytes + 1, chunk.subarray(1)];
    }
    if (chunk.length === 0) return true;
    this.learnLineEnd(chunk);
    let i = 0;
    while (i < chunk.length) {
      if (this.pendingQuote) {
        this.pendingQuote = false;
        if (chunk[i] === QUOTE) {
          i += 1;
          continue;
        }
        this.inQuoted = false;
        if (!this.endsField(chunk[i]!)) return false;
      }
      const q = chunk.indexOf(QUOTE, i);
      if (q === -1) break;
      if (this.inQuoted) this.pendingQuote = true;
      else if (this.startsField(q > 0 ? chunk[q - 1]! : this.previous)) this.inQuoted = true;
      else return false;
      i = q + 1;
    }
    this.previous = chunk[chunk.length - 1]!;
    return true;
  }

  /** False when the stream ended inside a quoted field. */
  end(): boolean {
    if (this.pendingQuote) {
      this.pendingQuote = false;
      this.inQuoted = false;
    }
    return !this.inQuoted;
  }

  /** CRLF and CR both begin with CR: the first of CR and LF in the stream is enough. */
  private learnLineEnd(chunk: Buffer): void {
    if (this.lineEnd !== undefined) return;
    const lf = chunk.indexOf(LF);
    const cr = chunk.indexOf(CR);
    if (cr !== -1 && (lf === -1 || cr < lf)) this.lineEnd = CR;
    else if (lf !== -1) this.lineEnd = LF;
  }

  private startsField(before: number): boolean {
    return before === COMMA || before === LF || before === CR;
  }

  private endsField(after: number): boolean {
    return after === COMMA || (this.lineEnd === undefined ? after === LF || after === CR : after === this.lineEnd);
  }
}
