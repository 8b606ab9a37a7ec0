import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Codes, TsformError } from '../errors.ts';
import { quoteIdent, sqlLiteral } from '../sql/quote.ts';
import type { ChunkLoad, ChunkSource } from './capture-chunk.ts';
import { lastCsvRow } from './csv-tail.ts';
import { deleteChunkKeys, insertLiveRows } from './slice-upsert.ts';
import type { Watermark } from './watermarks.ts';

/**
 * A chunk is read in this many COPYs ("pieces"), so that the OLTP writes piece n+1 while
 * DuckDB loads piece n; a piece is also the unit of DuckDB's work (a few statements).
 */
const PIECES_PER_CHUNK = 4;

/** Bytes kept from the end of a piece to read its last row; a longer row is read from the file. */
const TAIL_BYTES = 256 * 1024;

/**
 * DuckDB path: each piece's COPY output (CSV, every value quoted, NULL as a bare \N) goes to a
 * temp file that DuckDB's own CSV reader appends to a temp load table, so rows never become
 * JavaScript values (the appender costs ~1 µs per value). The position after a piece is its last
 * CSV row, read back from the end of the bytes; the next piece starts there, in the same OLTP
 * snapshot, while DuckDB loads this one. The upsert into raw runs once per chunk (each DELETE
 * scans the practice's slice of raw, so once per piece would cost as many scans).
 */
export async function loadChunkViaFiles(src: ChunkSource): Promise<ChunkLoad> {
  const { s, spec, columns } = src;
  const dir = await mkdtemp(join(tmpdir(), 'tsform-capture-'));
  const load = quoteIdent(`__tsf_capture_${randomBytes(6).toString('hex')}`);
  // Column names and types go into the reader's options as literals (DuckDB binds no
  // parameters there); they come from the OLTP catalog, not from row data. Typed by the CSV
  // reader itself (its parsers are much faster than a CAST pass afterwards).
  const struct = columns.map((c) => `${sqlLiteral(c.name)}: ${sqlLiteral(c.rawType)}`).join(', ');
  const readCsv = `read_csv($1, columns = {${struct}}, auto_detect = false, header = false, delim = ',', quote = '"', escape = '"', nullstr = '\\N', allow_quoted_nulls = false, parallel = true)`;
  let created = false;
  const loadPiece = async (file: string): Promise<void> => {
    // a temp table: in memory, never in the database file or its WAL
    await s.query(created ? `INSERT INTO ${load} SELECT * FROM ${readCsv}` : `CREATE TEMP TABLE ${load} AS SELECT * FROM ${readCsv}`, [file]);
    created = true;
    await rm(file, { force: true });
  };

  const pieceRows = Math.ceil(src.chunkRows / PIECES_PER_CHUNK);
  let after = src.after;
  let last: Watermark | undefined;
  let pending: Promise<void> | undefined;
  try {
    for (let piece = 0, remaining = src.chunkRows; remaining > 0; piece++) {
      const limit = Math.min(pieceRows, remaining);
      const file = join(dir, `piece-${piece}.csv`);
      const written = await copyToFile(await src.copy(after, limit, 'csv'), file);
      if (pending) await pending;
      pending = undefined;
      if (written.bytes === 0) break;
      const row = lastCsvRow(written.tail, columns.length, written.tailIsWhole) ?? lastCsvRow(await readFile(file), columns.length, true)!;
      last = after = positionOf(src, row);
      pending = loadPiece(file);
      // awaited before the next statement on this session; a failure meanwhile is not unhandled
      pending.catch(() => undefined);
      // Every row ends with a newline (values may hold more): fewer newlines than the limit
      // prove a short piece, so the practice is caught up and no further COPY is needed.
      if (written.newlines < limit) break;
      remaining -= limit;
    }
    if (pending) await pending;
    pending = undefined;
  } finally {
    // never leave a statement running on the warehouse session (the transaction rolls back next)
    await pending?.catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  if (!created) return { rows: 0, deleted: 0, last: undefined, finish: async () => 0 };
  const deleted = src.deletedIndex >= 0 ? `count(${quoteIdent(columns[src.deletedIndex]!.name)})` : '0';
  const stats = (await s.query(`SELECT count(*) AS n, ${deleted} AS d FROM ${load}`)).rows[0]!;
  const rows = { from: load, params: [], typed: true };
  await deleteChunkKeys(s, spec, src.tenant, columns, rows);
  const loaded = await insertLiveRows(s, spec, src.tenant, columns, rows);
  await s.query(`DROP TABLE ${load}`);
  return { rows: Number(stats.n), deleted: Number(stats.d), last, finish: async () => loaded };
}

function positionOf(src: ChunkSource, row: (string | null)[]): Watermark {
  const values = src.positionIndexes.map((i) => row[i]);
  if (values.some((v) => v === null || v === undefined)) {
    throw new TsformError(Codes.sqlError, `capture ${src.spec.label}: the updated column or a key column is NULL in the source; capture needs them set`);
  }
  const [updatedAt, ...key] = values as string[];
  return { updatedAt: updatedAt!, key };
}

interface WrittenPiece {
  bytes: number;
  newlines: number;
  /** The last bytes written (at least TAIL_BYTES of them, or all). */
  tail: Buffer;
  /** `tail` holds every byte of the piece. */
  tailIsWhole: boolean;
}

async function copyToFile(data: AsyncIterable<Buffer>, file: string): Promise<WrittenPiece> {
  const fh = await open(file, 'w');
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let dropped = false;
  let bytes = 0;
  let newlines = 0;
  try {
    for await (const b of data) {
      for (let i = b.indexOf(0x0a); i !== -1; i = b.indexOf(0x0a, i + 1)) newlines++;
      bytes += b.length;
      kept.push(b);
      keptBytes += b.length;
      while (kept.length > 1 && keptBytes - kept[0]!.length >= TAIL_BYTES) {
        keptBytes -= kept.shift()!.length;
        dropped = true;
      }
      await fh.write(b);
    }
  } finally {
    await fh.close();
  }
  return { bytes, newlines, tail: Buffer.concat(kept), tailIsWhole: !dropped };
}
