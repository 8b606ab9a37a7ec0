import { randomBytes } from 'node:crypto';
import { Codes, TsformError } from '../../errors.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import type { Session } from '../adapter.ts';
import type { StageColumn, StagedCopy } from '../copy-staging.ts';
import { parseCopyTextLine } from '../copy-text.ts';

/**
 * PostgreSQL takes a chunk's COPY text output unchanged into COPY FROM STDIN of a typed temp
 * table (the format is the same on both ends), inside the chunk's transaction: the rows are never
 * parsed in JavaScript. Every row of the text format ends with the one unescaped newline, which
 * gives the row count and the last row (the chunk's position).
 */
export async function stageCopyIn(s: Pick<Session, 'query'> & Required<Pick<Session, 'copyInText'>>, columns: readonly StageColumn[], data: AsyncIterable<Buffer>): Promise<StagedCopy> {
  const name = `__tsf_capture_${randomBytes(6).toString('hex')}`;
  // ON COMMIT DROP: the table lives for this chunk's transaction only, and writes no WAL
  await s.query(`CREATE TEMP TABLE ${quoteIdent(name)} (${columns.map((c) => `${quoteIdent(c.name)} ${c.rawType}`).join(', ')}) ON COMMIT DROP`);
  const tap = new TextTail();
  const rows = await s.copyInText('pg_temp', name, columns.map((c) => c.name), tap.watch(data));
  if (rows !== tap.rows) throw new TsformError(Codes.sqlError, `COPY into a capture chunk's table wrote ${rows} rows for ${tap.rows} lines`);
  return {
    bytes: tap.bytes,
    lastRow: tap.lastRow(),
    costlyToRead: false,
    relation: () => ({ sql: quoteRelation('pg_temp', name), params: [] }),
    dispose: async () => {
      await s.query(`DROP TABLE IF EXISTS ${quoteRelation('pg_temp', name)}`);
    },
  };
}

/** Counts the rows of a COPY text stream as it passes and keeps the bytes of the last one. */
class TextTail {
  rows = 0;
  bytes = 0;
  private last: Buffer | undefined;
  private partial: Buffer[] = [];

  async *watch(data: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
    for await (const b of data) {
      this.bytes += b.length;
      let end = -1;
      let prev = -1;
      for (let i = b.indexOf(0x0a); i !== -1; i = b.indexOf(0x0a, i + 1)) {
        this.rows++;
        prev = end;
        end = i;
      }
      if (end === -1) this.partial.push(b);
      else {
        this.last = prev === -1 ? Buffer.concat([...this.partial, b.subarray(0, end)]) : b.subarray(prev + 1, end);
        this.partial = end + 1 < b.length ? [b.subarray(end + 1)] : [];
      }
      yield b;
    }
    if (this.partial.some((p) => p.length > 0)) throw new Error('COPY stream ended in the middle of a row');
  }

  lastRow(): (string | null)[] | undefined {
    return this.last === undefined ? undefined : parseCopyTextLine(this.last.toString('utf8'));
  }
}
