import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parse } from 'csv-parse';
import type { Session } from '../adapters/adapter.ts';
import { Codes, diagnostic, formatDiagnostic, printable, TsformError } from '../errors.ts';
import { csvErrorDiagnostic, repeatedColumn } from '../project/seed-csv.ts';
import { PLAIN_TYPE_SYNTAX } from '../project/type-names.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';

const CHUNK = 5_000;

/** A load table's name in the meta schema: concurrent batches and runs must not create the same one. */
export function loadTableName(): string {
  return `__tsf_load_${randomBytes(6).toString('hex')}`;
}

export interface CsvLoadResult {
  header: string[];
  /** Rows kept (their tenant column was one of the wanted practices, or no filter). */
  loaded: number;
  /** Rows whose practice id is not a known practice: counted, never loaded. */
  unknownTenantRows: number;
  /** Rows of a known practice that is not wanted here (left out), and the file line of the first. */
  otherTenantRows: number;
  firstOtherTenantLine?: number;
}

/**
 * Streams a CSV (gzip when its displayed name ends in .gz) into an all-VARCHAR table
 * `schema.table` created here, from a path or from a file already opened (read from its start,
 * left open for the caller). With `tenantFilter`, only rows of those practices are kept: a practice's load
 * never carries another practice's rows. Empty fields become NULL.
 */
export async function loadCsvText(
  s: Session,
  file: string | FileHandle,
  displayPath: string,
  schema: string,
  table: string,
  tenantFilter?: { column: string; wanted: ReadonlySet<string>; known: ReadonlySet<string> },
): Promise<CsvLoadResult> {
  const { records, close } = csvRecords(file, displayPath);
  const startLine = recordStartLines();
  let header: string[] | undefined;
  let tenantIdx = -1;
  let buffer: (string | null)[][] = [];
  let loaded = 0;
  let unknownTenantRows = 0;
  let otherTenantRows = 0;
  let firstOtherTenantLine: number | undefined;
  try {
    for await (const r of records) {
      const rec = r.record;
      const line = startLine(r);
      if (!header) {
        header = rec;
        const dup = repeatedColumn(header);
        if (dup !== undefined) {
          const d = diagnostic(Codes.raggedCsv, `header repeats column '${printable(dup)}' (names are compared without regard to case)`, { file: displayPath, line: 1 });
          throw new TsformError(Codes.raggedCsv, formatDiagnostic(d), { file: displayPath, line: 1 });
        }
        await s.query(`CREATE TABLE ${quoteRelation(schema, table)} (${header.map((h) => `${quoteIdent(h)} VARCHAR`).join(', ')})`);
        if (tenantFilter) {
          tenantIdx = header.indexOf(tenantFilter.column);
          if (tenantIdx === -1) {
            throw new TsformError(Codes.raggedCsv, `${displayPath}: no '${tenantFilter.column}' column in the header`, { file: displayPath, line: 1 });
          }
        }
        continue;
      }
      if (tenantFilter) {
        const id = rec[tenantIdx]!;
        if (!tenantFilter.wanted.has(id)) {
          if (!tenantFilter.known.has(id)) unknownTenantRows++;
          else {
            otherTenantRows++;
            firstOtherTenantLine ??= line;
          }
          continue;
        }
      }
      buffer.push(rec.map((v) => (v === '' ? null : v)));
      if (buffer.length >= CHUNK) {
        await s.insertText(schema, table, header, buffer);
        loaded += buffer.length;
        buffer = [];
      }
    }
  } catch (err) {
    if (err instanceof TsformError) throw err;
    const e = err as { code?: string };
    if (e.code?.startsWith('CSV_')) {
      const d = csvErrorDiagnostic(err, displayPath);
      throw new TsformError(Codes.raggedCsv, formatDiagnostic(d), { file: displayPath, line: d.line });
    }
    if (e.code === 'ENOENT') throw new TsformError(Codes.missingFile, `${displayPath}: file not found`, { file: displayPath });
    if (e.code === 'Z_DATA_ERROR') throw new TsformError(Codes.raggedCsv, `${displayPath}: not a valid gzip file`, { file: displayPath });
    throw err;
  } finally {
    close();
  }
  if (!header) throw new TsformError(Codes.raggedCsv, `${displayPath}: empty file (no header row)`, { file: displayPath, line: 1 });
  if (buffer.length > 0) {
    await s.insertText(schema, table, header, buffer);
    loaded += buffer.length;
  }
  return { header, loaded, unknownTenantRows, otherTenantRows, firstOtherTenantLine };
}

/** A CSV record and the file line it ends on (csv-parse's `info.lines`). */
export interface CsvRecord {
  record: string[];
  info: { lines: number };
}

/**
 * The records of a CSV file, gzip when its displayed name ends in .gz, header first; `close`
 * stops reading (an open file is left open, as openRead leaves it).
 */
export function csvRecords(file: string | FileHandle, displayPath: string): { records: AsyncIterable<CsvRecord>; close(): void } {
  const input = openRead(file);
  const parser = parse({ bom: true, relax_column_count: false, skip_empty_lines: true, info: true });
  const text = displayPath.toLowerCase().endsWith('.gz') ? input.pipe(createGunzip()) : input;
  // pipe() does not forward errors: without these a missing file or bad gzip left the parser waiting forever.
  if (text !== input) input.on('error', (err) => text.destroy(err));
  text.on('error', (err: Error) => parser.destroy(err));
  return { records: text.pipe(parser) as AsyncIterable<CsvRecord>, close: () => input.destroy() };
}

/**
 * The line each record starts on, as an editor numbers lines. csv-parse's `info.lines` is where
 * a record ends, and it counts the CR and the LF of a line break inside a quoted field apart
 * (one line too many for that record and every later one); this counts them back.
 */
export function recordStartLines(): (r: CsvRecord) => number {
  let extraBefore = 0;
  return ({ record, info }) => {
    let breaks = 0;
    let crlf = 0;
    for (const v of record) {
      // a field without a line break (nearly every one) is passed over by native searches
      if (!v.includes('\n') && !v.includes('\r')) continue;
      for (let i = 0; i < v.length; i++) {
        const c = v.charCodeAt(i);
        if (c === 10 || c === 13) breaks++;
        if (c === 13 && v.charCodeAt(i + 1) === 10) crlf++;
      }
    }
    const start = info.lines - breaks - extraBefore;
    extraBefore += crlf;
    return start;
  };
}

/**
 * A file's bytes from its start: a path is opened here and closed with the stream; an open file
 * is read by position and left open (a file stream over a descriptor closes it when destroyed,
 * whatever `autoClose` says, and the descriptor's number is then another file's).
 */
export function openRead(file: string | FileHandle): Readable {
  if (typeof file === 'string') return createReadStream(file);
  return Readable.from(
    (async function* () {
      const buf = Buffer.allocUnsafe(1 << 16);
      for (let pos = 0; ; ) {
        const { bytesRead } = await file.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) return;
        pos += bytesRead;
        yield Buffer.from(buf.subarray(0, bytesRead));
      }
    })(),
    { objectMode: false },
  );
}

/** `CAST(NULLIF(col, '') AS type)` select list that turns a text load into typed rows. */
export function typedSelect(schema: string, table: string, header: string[], types: Record<string, string | undefined>): string {
  const cols = header.map((h) => {
    const t = types[h];
    return t && t.toLowerCase() !== 'varchar' && t.toLowerCase() !== 'text'
      ? `CAST(${quoteIdent(h)} AS ${safeType(t)}) AS ${quoteIdent(h)}`
      : quoteIdent(h);
  });
  return `SELECT ${cols.join(', ')} FROM ${quoteRelation(schema, table)}`;
}

/**
 * Type names come from project yml (compile checked them: project/type-names.ts) and from the
 * OLTP's catalog (`character varying(20)`, `jsonb`); only the plain type syntax goes into SQL text.
 */
export function safeType(t: string): string {
  if (!PLAIN_TYPE_SYNTAX.test(t.trim())) {
    throw new TsformError(Codes.invalidRunSetting, `data type ${JSON.stringify(t)} is not a plain SQL type name`);
  }
  return t.trim();
}

const INTEGER = /^-?(0|[1-9]\d{0,17})$/;
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const BOOL = /^(true|false)$/i;

/** Seed column types: the narrowest of bigint, double precision, boolean, date that fits every value. */
export function inferColumnType(values: Iterable<string>): string {
  let int = true;
  let num = true;
  let date = true;
  let bool = true;
  let any = false;
  for (const v of values) {
    if (v === '') continue;
    any = true;
    int &&= INTEGER.test(v);
    num &&= NUMBER.test(v);
    date &&= DATE.test(v);
    bool &&= BOOL.test(v);
    if (!int && !num && !date && !bool) return 'VARCHAR';
  }
  if (!any) return 'VARCHAR';
  return int ? 'BIGINT' : num ? 'DOUBLE PRECISION' : bool ? 'BOOLEAN' : date ? 'DATE' : 'VARCHAR';
}
