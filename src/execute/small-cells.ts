import type { Session } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';
import { quoteIdent } from '../sql/quote.ts';

/**
 * Small-cell suppression of a published aggregate (`k_anonymity_count`), on the staged rows
 * before they are published.
 *
 * - Primary: a cell whose count is below k (and not 0) is not published at all: no row, so
 *   nothing says that it exists. (A NULL count is refused: it says "a small cell is here".)
 * - Complementary: for every margin of the table (every set of its other columns, including
 *   the grand total), the suppressed cells of one margin group add up to 0, to at least k, or to
 *   the whole group. Otherwise a total published anywhere (this table summed, or another
 *   published table at a coarser grain) minus the published cells would give a count of 1 to
 *   k-1. The smallest published cell of such a group is suppressed as well, until none is left.
 *
 * Counts are treated as additive; a model publishes persons once per cell of each margin
 * (research_condition_prevalence keeps one demographic row per person for that reason).
 */

const CELLS = '__tsf_cells';
const SUP = '__tsf_suppressed';
const CELL = '__tsf_cell';
/** 2^8 margins at most: beyond that the check is too costly to run before every publication. */
export const MAX_DIMENSIONS = 8;

export interface SuppressionSummary {
  /** Cells below k. */
  primary: number;
  /** Cells suppressed so that no margin gives a primary cell back. */
  complementary: number;
  /** Smallest published non-zero count, or null when nothing is published. */
  smallest: number | null;
  /** Rows published. */
  published: number;
}

/** Every subset of `dims` except `dims` itself (the cells), smallest first. */
export function margins(dims: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let mask = 0; mask < 2 ** dims.length - 1; mask++) out.push(dims.filter((_, i) => mask & (2 ** i)));
  return out.sort((a, b) => a.length - b.length);
}

/** Group rows of margin `keep` whose suppressed part discloses a small count. */
function violatingGroupsSql(keep: readonly string[], k: number): string {
  const cols = keep.map(quoteIdent).join(', ');
  const n = `${quoteIdent('__tsf_n')}`;
  return `SELECT ${cols || '1 AS __tsf_all'} FROM ${quoteIdent(CELLS)}${cols ? ` GROUP BY ${cols}` : ''}
    HAVING sum(CASE WHEN ${SUP} THEN ${n} ELSE 0 END) > 0 AND sum(CASE WHEN ${SUP} THEN ${n} ELSE 0 END) < ${k}
       AND sum(CASE WHEN ${SUP} THEN 0 ELSE ${n} END) > 0`;
}

function sameGroupSql(keep: readonly string[]): string {
  return keep.length === 0 ? 'TRUE' : keep.map((c) => `c.${quoteIdent(c)} IS NOT DISTINCT FROM g.${quoteIdent(c)}`).join(' AND ');
}

async function scalarNumber(s: Session, sql: string): Promise<number> {
  const { rows } = await s.query(sql);
  return Number(Object.values(rows[0] ?? {})[0] ?? 0);
}

/**
 * Suppresses the staged aggregate in place (the stage table is rebuilt without the suppressed
 * rows), then verifies the result independently of how it was reached. Throws TSF414 (nothing
 * published) on a NULL or non-numeric count, or a table with too many dimensions.
 */
export async function suppressSmallCells(s: Session, stage: string, name: string, countColumn: string, k: number): Promise<SuppressionSummary> {
  const columns = (await s.query(`SELECT * FROM ${quoteIdent(stage)} LIMIT 0`)).columns;
  if (!columns.includes(countColumn)) throw new TsformError(Codes.privacyGate, `${name} not published: k_anonymity_count '${countColumn}' is not one of its columns`);
  const dims = columns.filter((c) => c !== countColumn);
  if (dims.length > MAX_DIMENSIONS) {
    throw new TsformError(Codes.privacyGate, `${name} not published: ${dims.length} columns besides '${countColumn}' (at most ${MAX_DIMENSIONS} can be checked for complementary suppression)`);
  }
  const count = quoteIdent(countColumn);
  const nulls = await scalarNumber(s, `SELECT count(*) FROM ${quoteIdent(stage)} WHERE ${count} IS NULL`);
  if (nulls > 0) {
    throw new TsformError(
      Codes.privacyGate,
      `${name} not published: ${nulls} row(s) with a NULL ${countColumn} (a NULL count still says that a small cell exists); publish the count and tsform suppresses cells below k=${k}`,
    );
  }
  const all = columns.map(quoteIdent).join(', ');
  await s.createTempTableAs(
    CELLS,
    `SELECT row_number() OVER () AS ${CELL}, CAST(${count} AS DOUBLE PRECISION) AS __tsf_n, (${count} <> 0 AND ${count} < ${k}) AS ${SUP}, ${all} FROM ${quoteIdent(stage)}`,
    [],
  );
  const primary = await scalarNumber(s, `SELECT count(*) FROM ${quoteIdent(CELLS)} WHERE ${SUP}`);
  const groups = margins(dims);
  let suppressed = primary;
  for (;;) {
    for (const keep of groups) {
      const partition = keep.map((c) => `c.${quoteIdent(c)}`).join(', ');
      await s.query(
        `UPDATE ${quoteIdent(CELLS)} SET ${SUP} = TRUE WHERE ${CELL} IN (
           SELECT ${CELL} FROM (
             SELECT c.${CELL}, row_number() OVER (${partition ? `PARTITION BY ${partition} ` : ''}ORDER BY c.__tsf_n, c.${CELL}) AS rn
               FROM ${quoteIdent(CELLS)} AS c JOIN (${violatingGroupsSql(keep, k)}) AS g ON ${sameGroupSql(keep)}
              WHERE NOT c.${SUP} AND c.__tsf_n > 0) AS pick
            WHERE rn = 1)`,
      );
    }
    const now = await scalarNumber(s, `SELECT count(*) FROM ${quoteIdent(CELLS)} WHERE ${SUP}`);
    if (now === suppressed) break;
    suppressed = now;
  }
  await s.query(`DROP TABLE ${quoteIdent(stage)}`);
  await s.createTempTableAs(stage, `SELECT ${all} FROM ${quoteIdent(CELLS)} WHERE NOT ${SUP}`, []);
  await verifySuppression(s, stage, name, countColumn, dims, k);
  const smallest = await s.query(`SELECT min(${count}) AS m, count(*) AS n FROM ${quoteIdent(stage)} WHERE ${count} <> 0`);
  const published = await scalarNumber(s, `SELECT count(*) FROM ${quoteIdent(stage)}`);
  await s.query(`DROP TABLE ${quoteIdent(CELLS)}`);
  const m = smallest.rows[0]?.m;
  return { primary, complementary: suppressed - primary, smallest: m === null || m === undefined ? null : Number(m), published };
}

/** The gate proper: what is about to be published, checked without trusting the loop above. */
async function verifySuppression(s: Session, stage: string, name: string, countColumn: string, dims: readonly string[], k: number): Promise<void> {
  const count = quoteIdent(countColumn);
  const small = await s.query(`SELECT ${count} AS size, count(*) AS cells FROM ${quoteIdent(stage)} WHERE ${count} IS NULL OR (${count} <> 0 AND ${count} < ${k}) GROUP BY 1 ORDER BY 1`);
  if (small.rows.length > 0) {
    const histogram = small.rows.map((r) => `${Number(r.cells)} of size ${Number(r.size)}`).join(', ');
    throw new TsformError(Codes.privacyGate, `${name} not published: cells below k=${k} (${histogram}); suppress them`);
  }
  // Every cell published is a cell of the model, unchanged, and every margin is safe.
  const published = await scalarNumber(s, `SELECT count(*) FROM ${quoteIdent(stage)}`);
  const kept = await scalarNumber(s, `SELECT count(*) FROM ${quoteIdent(CELLS)} WHERE NOT ${SUP}`);
  if (published !== kept) throw new TsformError(Codes.privacyGate, `${name} not published: ${published} rows staged, ${kept} cells kept by suppression`);
  for (const keep of margins(dims)) {
    const bad = await scalarNumber(s, `SELECT count(*) FROM (${violatingGroupsSql(keep, k)}) AS v`);
    if (bad > 0) {
      throw new TsformError(Codes.privacyGate, `${name} not published: ${bad} margin group(s) over (${keep.join(', ') || 'all rows'}) would give back a suppressed count below k=${k}`);
    }
  }
}
