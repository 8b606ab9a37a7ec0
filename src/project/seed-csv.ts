import { parse } from 'csv-parse/sync';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import { SIMPLE_NAME } from '../sql/quote.ts';

// csv-parse is used rather than a hand-written splitter: quoted fields, embedded newlines and
// BOMs are where hand-written CSV readers lose rows, and it reports the line of a ragged record.

export interface ParsedCsv {
  header: string[];
  rows: string[][];
}

export function parseCsv(text: string): ParsedCsv {
  const records = parse(text, { bom: true, skip_empty_lines: true, relax_column_count: false }) as string[][];
  const [header = [], ...rows] = records;
  return { header, rows };
}

/**
 * A seed read while the project is read, so `compile` already reports a broken one: its problems,
 * or its parsed records when it has none (practice-seeds.ts reads a seed's values).
 */
export function readSeedCsv(text: string, file: string): { problems: Diagnostic[]; parsed?: ParsedCsv } {
  let parsed: ParsedCsv;
  try {
    parsed = parseCsv(text);
  } catch (err) {
    return { problems: [csvErrorDiagnostic(lineCountedError(text, err), file)] };
  }
  const { header } = parsed;
  if (header.length === 0) return { problems: [diagnostic(Codes.raggedCsv, 'seed has no header row', { file, line: 1 })] };
  const bad = header.filter((h) => !SIMPLE_NAME.test(h));
  if (bad.length > 0) {
    return { problems: [diagnostic(Codes.invalidIdentifier, `seed header has names that are not simple identifiers: ${bad.map((b) => JSON.stringify(b)).join(', ')}`, { file, line: 1 })] };
  }
  const dup = repeatedColumn(header);
  if (dup) return { problems: [diagnostic(Codes.raggedCsv, `seed header repeats column '${dup}' (names are compared without regard to case)`, { file, line: 1 })] };
  return { problems: [], parsed };
}

/**
 * The first header name that repeats an earlier one, without regard to case: `Name,name` are one
 * column to DuckDB (a seed's run failed at no line; a CSV extract's load with the engine's
 * "already exists" for every practice).
 */
export function repeatedColumn(header: readonly string[]): string | undefined {
  const folded = header.map((h) => h.toLowerCase());
  return header.find((_, i) => folded.indexOf(folded[i]!) !== i);
}

/**
 * csv-parse counts CR and LF apart inside a quoted field, so a CRLF file's error after a quoted
 * line break was a line late: the same parse with LF endings counts as an editor does.
 */
function lineCountedError(text: string, err: unknown): unknown {
  if (!text.includes('\r\n')) return err;
  try {
    parseCsv(text.replace(/\r\n/g, '\n'));
  } catch (again) {
    if ((again as { code?: string }).code === (err as { code?: string }).code) return again;
  }
  return err;
}

/** csv-parse errors carry the line; their message may quote a value, so it is not passed on. */
export function csvErrorDiagnostic(err: unknown, file: string): Diagnostic {
  const e = err as { code?: string; lines?: number; record?: unknown[] };
  if (e.code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH' || e.code === 'CSV_RECORD_DONT_MATCH_COLUMNS_LENGTH') {
    return diagnostic(Codes.raggedCsv, `ragged row: ${e.record?.length ?? '?'} fields where the header has a different count`, { file, line: e.lines });
  }
  return diagnostic(Codes.raggedCsv, `unreadable CSV (${e.code ?? 'parse error'})`, { file, line: e.lines });
}
