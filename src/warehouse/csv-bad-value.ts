import type { FileHandle } from 'node:fs/promises';
import type { SqlParam } from '../adapters/adapter.ts';
import { Codes, TsformError, type ErrorClass } from '../errors.ts';
import { csvRecords, recordStartLines, safeType } from './load-csv.ts';

/**
 * Where a CSV's value failed its declared type. Extracts, seeds and landing files load as text
 * and are cast by one statement, which fails naming neither a line nor (without the value,
 * which is withheld as possible PHI) anything to look for. After such a failure the file is read
 * again and its values are cast by the same engine, a slice at a time, each slice a bound list
 * (never spliced into SQL): the first line, in file order, whose value does not cast. Only on the
 * failure path; a load that casts pays nothing.
 */

export interface CsvFile {
  /** A path, or a file already opened (read from its start, left open). */
  file: string | FileHandle;
  /** The project-relative name messages use. */
  display: string;
}

/** Only the rows whose `column` is one of `wanted` were cast (a batch's practices). */
export interface CsvRowFilter {
  column: string;
  wanted: ReadonlySet<string>;
}

export interface BadCsvValue {
  line: number;
  column: string;
  type: string;
}

/** The engine the load ran on (an Adapter): statements run on their own, the failed transaction being over. */
export interface CastEngine {
  query(sql: string, params: readonly SqlParam[]): Promise<unknown>;
  classifyError(err: unknown): ErrorClass;
}

/** Values cast per statement while looking for the slice that fails. */
const SLICE = 20_000;

/**
 * The error to report for a failed typed load of `csv`: a TsformError naming the file, line and
 * column of the first value its type cannot hold, or `err` itself when no value is to blame: a
 * transient or cancelled failure keeps its class (a retry, a timeout), and a type the engine does
 * not know, a file that cannot be read again or a probe that fails otherwise than by a cast leave
 * the error as it was.
 */
export async function explainCastFailure(err: unknown, engine: CastEngine, csv: CsvFile, types: Readonly<Record<string, string | undefined>>, filter?: CsvRowFilter): Promise<unknown> {
  if (err instanceof TsformError || engine.classifyError(err) !== 'permanent') return err;
  let bad: BadCsvValue | undefined;
  try {
    bad = await findBadCsvValue(engine, csv, types, filter);
  } catch {
    return err;
  }
  if (!bad) return err;
  return new TsformError(Codes.badValue, `${csv.display}:${bad.line}: column '${bad.column}' holds a value that is not a valid ${bad.type} (the value is withheld)`, {
    file: csv.display,
    line: bad.line,
  });
}

/** The first line of `csv` (file order) whose value of a typed column the engine cannot cast, if any. */
export async function findBadCsvValue(engine: CastEngine, csv: CsvFile, types: Readonly<Record<string, string | undefined>>, filter?: CsvRowFilter): Promise<BadCsvValue | undefined> {
  const { records, close } = csvRecords(csv.file, csv.display);
  const startLine = recordStartLines();
  let columns: { index: number; name: string; type: string }[] | undefined;
  let filterIndex = -1;
  let slices: ColumnSlice[] = [];
  let rows = 0;
  try {
    for await (const r of records) {
      const { record } = r;
      const line = startLine(r);
      if (!columns) {
        columns = record.flatMap((name, index) => {
          const type = types[name];
          return type && !/^(varchar|text)$/i.test(type.trim()) ? [{ index, name, type: safeType(type) }] : [];
        });
        if (columns.length === 0) return undefined;
        slices = columns.map(() => ({ lines: [], values: [] }));
        if (filter) filterIndex = record.indexOf(filter.column);
        continue;
      }
      if (filter && (filterIndex < 0 || !filter.wanted.has(record[filterIndex] ?? ''))) continue;
      // An empty field loads as NULL, which every type holds.
      columns.forEach((c, i) => {
        const v = record[c.index];
        if (v === undefined || v === '') return;
        slices[i]!.lines.push(line);
        slices[i]!.values.push(v);
      });
      if (++rows >= SLICE) {
        const bad = await firstBad(engine, columns, slices);
        if (bad) return bad;
        slices = columns.map(() => ({ lines: [], values: [] }));
        rows = 0;
      }
    }
    return columns ? await firstBad(engine, columns, slices) : undefined;
  } finally {
    close();
  }
}

/** One column's non-empty values of a slice of rows, and the line of each. */
interface ColumnSlice {
  lines: number[];
  values: string[];
}

/** The earliest failing line of one slice over every typed column. */
async function firstBad(engine: CastEngine, columns: readonly { name: string; type: string }[], slices: readonly ColumnSlice[]): Promise<BadCsvValue | undefined> {
  let best: BadCsvValue | undefined;
  for (const [i, c] of columns.entries()) {
    const { lines, values } = slices[i]!;
    if (values.length === 0) continue;
    const at = await failingIndex(engine, c.type, values);
    if (at !== undefined && (best === undefined || lines[at]! < best.line)) best = { line: lines[at]!, column: c.name, type: c.type };
  }
  return best;
}

/**
 * The first index whose value does not cast, by halving: the failing part is the earliest half
 * that fails. A cast of no value must succeed (else the type is at fault, not a value) and the
 * value found must fail alone; a failure other than a permanent one (a lost connection) stops
 * the search.
 */
async function failingIndex(engine: CastEngine, type: string, values: readonly string[]): Promise<number | undefined> {
  const fails = async (lo: number, hi: number) => {
    try {
      await engine.query(`SELECT count(CAST(v AS ${type})) AS n FROM unnest($1::VARCHAR[]) AS u(v)`, [values.slice(lo, hi)]);
      return false;
    } catch (err) {
      if (engine.classifyError(err) !== 'permanent') throw err;
      return true;
    }
  };
  if ((await fails(0, 0)) || !(await fails(0, values.length))) return undefined;
  let lo = 0;
  let hi = values.length;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (await fails(lo, mid)) hi = mid;
    else lo = mid;
  }
  return (await fails(lo, lo + 1)) ? lo : undefined;
}
