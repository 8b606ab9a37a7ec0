import { createReadStream, type ReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parse } from 'csv-parse';
import type { Adapter } from '../adapters/adapter.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { CsvQuoteCheck } from './csv-quotes.ts';
import type { CsvLoadResult } from './load-csv.ts';

/**
 * A CSV file loaded by the warehouse engine's own reader (Adapter.csvFileReader) into an
 * all-VARCHAR table `schema.table`, only the rows of `wanted` practices; in a transaction of its
 * own. Undefined when the engine has no reader or the file is anything but plain: then nothing
 * was written, and the caller parses the file in JavaScript (load-csv.ts loadCsvText), whose
 * messages name the file and line of what is wrong. So a file loads the same either way:
 *
 * - the header is read by the same parser as there; a duplicate or empty name, or no tenant
 *   column, is left to loadCsvText to report;
 * - any row the engine cannot read (ragged, bad encoding, mixed line ends) fails its statement,
 *   and the engine's message, which may quote the row, is dropped unread;
 * - a quote where csv-parse refuses one sends the file back too (csv-quotes.ts): the engine
 *   keeps `ab"c` as it is and reads `"x" ` as `x`.
 *
 * `firstOtherTenantLine` is never set: the engine does not count lines.
 */
export async function loadCsvByEngine(
  adapter: Adapter,
  path: string,
  schema: string,
  table: string,
  filter: { column: string; wanted: ReadonlySet<string>; known: ReadonlySet<string> },
): Promise<CsvLoadResult | undefined> {
  const reader = adapter.csvFileReader;
  if (!reader) return undefined;
  const header = await csvHeader(path).catch(() => undefined);
  if (!header || header.length === 0 || new Set(header).size !== header.length || header.includes('') || !header.includes(filter.column)) return undefined;
  if (!(await quotesAsCsvParse(path).catch(() => false))) return undefined;
  const file = await reader.open(path, header).catch(() => undefined);
  if (!file) return undefined;
  try {
    return await adapter.transaction(async (s) => {
      const t = quoteIdent(filter.column);
      const ids = (n: number) => `(SELECT DISTINCT unnest($${n}::VARCHAR[]) AS id)`;
      const wanted = [...filter.wanted];
      // The counts first, in a pass of their own: the load itself is one statement.
      const from = file.relation(3);
      const { rows } = await s.query(
        `SELECT count(w.id) AS loaded, count(*) FILTER (WHERE k.id IS NULL) AS unknown, count(*) FILTER (WHERE k.id IS NOT NULL AND w.id IS NULL) AS other
         FROM ${from.sql} AS f LEFT JOIN ${ids(1)} AS w ON w.id = f.${t} LEFT JOIN ${ids(2)} AS k ON k.id = f.${t}`,
        [wanted, [...filter.known], ...from.params],
      );
      const counts = rows[0]!;
      const rel = file.relation(2);
      await s.query(`CREATE TABLE ${quoteRelation(schema, table)} AS SELECT * FROM ${rel.sql} AS f WHERE f.${t} IN ${ids(1)}`, [wanted, ...rel.params]);
      return { header, loaded: Number(counts.loaded), unknownTenantRows: Number(counts.unknown), otherTenantRows: Number(counts.other) };
    });
  } catch (err) {
    if (adapter.classifyError(err) === 'cancelled') throw err;
    return undefined;
  } finally {
    await file.dispose();
  }
}

/** Whether every quote of the file stands where csv-parse takes one (csv-quotes.ts). */
async function quotesAsCsvParse(path: string): Promise<boolean> {
  const { input, text } = openText(path);
  const quotes = new CsvQuoteCheck();
  try {
    for await (const chunk of text as AsyncIterable<Buffer>) if (!quotes.feed(chunk)) return false;
    return quotes.end();
  } finally {
    input.destroy();
  }
}

/**
 * The first record, as loadCsvText's parser reads it, when it is the file's first line: the
 * engine takes its first line for the header, so after a blank line it would load the header as
 * a row of data.
 */
async function csvHeader(path: string): Promise<string[] | undefined> {
  const { input, text } = openText(path);
  const parser = parse({ bom: true, skip_empty_lines: true, to: 1, info: true });
  text.on('error', (err: Error) => parser.destroy(err));
  try {
    for await (const { record, info } of text.pipe(parser) as AsyncIterable<{ record: string[]; info: { lines: number } }>) return info.lines === 1 ? record : undefined;
    return undefined;
  } finally {
    input.destroy();
  }
}

/** The file's bytes, gunzipped when the name ends in .gz; a read error reaches the gunzip stream too. */
function openText(path: string): { input: ReadStream; text: Readable } {
  const input = createReadStream(path, { highWaterMark: 1 << 20 });
  const text = path.endsWith('.gz') ? input.pipe(createGunzip()) : input;
  if (text !== input) input.on('error', (err) => text.destroy(err));
  return { input, text };
}
