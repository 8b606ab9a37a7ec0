import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { quoteIdent, sqlLiteral } from '../../sql/quote.ts';
import type { CopyStaging, StageColumn, StagedCopy } from '../copy-staging.ts';
import { privateScratchDir } from '../scratch-dir.ts';
import { duckdbStrictCast, needsStrictCast } from '../unloadable-value.ts';
import { lastCsvRow } from './csv-tail.ts';

/** Bytes kept from the end of the COPY output to read its last row; a longer row is read from the file. */
const TAIL_BYTES = 256 * 1024;
/** Bytes gathered before one write: one write per COPY message batch costs more than the COPY. */
const WRITE_BYTES = 1024 * 1024;

/**
 * DuckDB takes a chunk's COPY output (CSV, every value quoted, NULL as a bare \N) through a temp
 * file that its own CSV reader loads: rows never become JavaScript values (the appender costs
 * ~1 µs per value), and the reader's typed parsers are much faster than a CAST pass afterwards.
 * Dates, timestamps and decimals are the exception: read as text and cast strictly
 * (unloadable-value.ts), since the reader's parsers lose or NULL what DuckDB cannot hold. It
 * cost nothing measurable: bench:capture at 300,000 rows (BENCH_CAPTURE_LARGE, busy machine),
 * DuckDB large 71,977 rows/s before, 74,863 after (runs 56k–93k both ways); changed rows 66,994 / 67,925.
 * The file is written before the warehouse transaction, so the next chunk is read from the OLTP
 * while one loads. Its last row, the chunk's position, is read back from the end of the bytes.
 */
export const csvFileStaging: CopyStaging = {
  format: 'csv',
  ahead: stageCsvFile,
};

async function stageCsvFile(columns: readonly StageColumn[], data: AsyncIterable<Buffer>): Promise<StagedCopy> {
  // In the process's private scratch folder: the only folder a locked-down DuckDB may read (duckdb-adapter.ts lockDown).
  const dir = await mkdtemp(join(privateScratchDir(), 'capture-'));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    const file = join(dir, 'chunk.csv');
    const written = await copyToFile(data, file);
    const lastRow = written.bytes === 0 ? undefined : (lastCsvRow(written.tail, columns.length, written.tailIsWhole) ?? lastCsvRow(await readFile(file), columns.length, true)!);
    // Names and types go into the reader's options as literals (DuckDB binds no parameters
    // there); they come from the OLTP catalog, not from row data.
    // Dates, timestamps and decimals are read as text and cast strictly (unloadable-value.ts): the
    // reader's DATE parser drops a ` BC` and its TIMESTAMPTZ parser turns what it cannot parse
    // into NULL, and a failed parse names no column.
    const struct = columns.map((c) => `${sqlLiteral(c.name)}: ${sqlLiteral(needsStrictCast(c.rawType) ? 'VARCHAR' : c.rawType)}`).join(', ');
    const strict = columns.some((c) => needsStrictCast(c.rawType));
    const select = columns.map((c) => (needsStrictCast(c.rawType) ? `${duckdbStrictCast(quoteIdent(c.name), c.rawType, c.name)} AS ${quoteIdent(c.name)}` : quoteIdent(c.name))).join(', ');
    return {
      bytes: written.bytes,
      lastRow,
      costlyToRead: true,
      relation: (first) => {
        const read = `read_csv($${first}, columns = {${struct}}, auto_detect = false, header = false, delim = ',', quote = '"', escape = '"', nullstr = '\\N', allow_quoted_nulls = false, parallel = true)`;
        return { sql: strict ? `(SELECT ${select} FROM ${read})` : read, params: [file] };
      },
      dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}

interface WrittenCopy {
  bytes: number;
  /** The last bytes written (at least TAIL_BYTES of them, or all). */
  tail: Buffer;
  /** `tail` holds every byte written. */
  tailIsWhole: boolean;
}

async function copyToFile(data: AsyncIterable<Buffer>, file: string): Promise<WrittenCopy> {
  const fh = await open(file, 'w');
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let dropped = false;
  let bytes = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  try {
    for await (const b of data) {
      bytes += b.length;
      kept.push(b);
      keptBytes += b.length;
      while (kept.length > 1 && keptBytes - kept[0]!.length >= TAIL_BYTES) {
        keptBytes -= kept.shift()!.length;
        dropped = true;
      }
      batch.push(b);
      batchBytes += b.length;
      if (batchBytes >= WRITE_BYTES) {
        await fh.writev(batch);
        batch = [];
        batchBytes = 0;
      }
    }
    if (batch.length > 0) await fh.writev(batch);
  } finally {
    await fh.close();
  }
  return { bytes, tail: Buffer.concat(kept), tailIsWhole: !dropped };
}
