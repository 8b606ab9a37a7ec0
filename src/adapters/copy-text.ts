/**
 * A streaming reader of PostgreSQL's COPY text format. Rows are split on `\n` and fields on
 * `\t` (both are always escaped inside values in this format), so no quoting state is needed;
 * this is several times faster than a CSV parser and it is the hot loop of capture.
 */
export class CopyTextReader {
  private rest: Buffer | undefined;

  /** Complete rows in `chunk` (plus what was left over from the previous chunk). */
  push(chunk: Buffer): (string | null)[][] {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    const end = buf.lastIndexOf(0x0a);
    if (end === -1) {
      this.rest = buf;
      return [];
    }
    this.rest = end + 1 < buf.length ? buf.subarray(end + 1) : undefined;
    const text = buf.toString('utf8', 0, end);
    return text.split('\n').map(parseCopyTextLine);
  }

  /** Throws when the stream ended inside a row (a cut connection). */
  end(): void {
    if (this.rest && this.rest.length > 0) throw new Error('COPY stream ended in the middle of a row');
  }
}

/** One row of COPY text output (without its newline): fields split on tabs, `\N` as null, escapes decoded. */
export function parseCopyTextLine(line: string): (string | null)[] {
  const fields: (string | null)[] = line.split('\t');
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i] as string;
    if (f === '\\N') fields[i] = null;
    else if (f.includes('\\')) fields[i] = unescapeField(f);
  }
  return fields;
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

/** Backslash sequences of COPY text output (PostgreSQL emits only these, plus octal on input). */
export function unescapeField(f: string): string {
  return f.replace(/\\([0-7]{1,3}|x[0-9a-fA-F]{1,2}|.)/g, (_, seq: string) => {
    if (/^[0-7]/.test(seq)) return String.fromCharCode(parseInt(seq, 8));
    if (seq.length > 1 && seq[0] === 'x') return String.fromCharCode(parseInt(seq.slice(1), 16));
    return ESCAPES[seq] ?? seq;
  });
}
