import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import type { ResolvedSpec } from './capture-spec.ts';
import type { OltpSource } from './oltp-source.ts';

/** How far ahead of the OLTP's clock an `updated_at` may be (writers' clocks differ) before it is counted. */
export const AHEAD_TOLERANCE_SECONDS = 600;

/**
 * Rows watermark capture cannot place: `updated_at` NULL (never read: capture reads in
 * `updated_at` order) or more than AHEAD_TOLERANCE_SECONDS ahead of the OLTP's `now()` (read only
 * once that time has come; a typo like year 2099 hides a row for decades). Red-team, 2026-12-07,
 * finding 5: such rows were missing from raw with no word. They are not an error (the row is
 * loaded as soon as its `updated_at` is set right, and one row must not stop a practice's
 * capture every run), but the run says so: counts per practice id, the five largest named, no
 * value. One query per table per run; an index led by `updated_at` (the sweep wants one too)
 * makes it two index range scans, else it reads the table.
 */
export async function countUnplacedRows(oltp: OltpSource, spec: ResolvedSpec, updatedType: string | undefined): Promise<{ nulls: number; ahead: number; shown: string }> {
  const u = quoteIdent(spec.updatedColumn);
  const tc = quoteIdent(spec.tenantColumn);
  const t = (updatedType ?? '').toLowerCase();
  // the bound in the column's own type, so that an index on it serves the range
  const temporal = t === 'date' || t.startsWith('timestamp');
  const aheadOf = temporal ? `${u} > CAST(now() + make_interval(secs => ${AHEAD_TOLERANCE_SECONDS}) AS ${t})` : 'false';
  const { rows } = await oltp.query(
    `SELECT ${tc}::text AS tenant, count(*) FILTER (WHERE ${u} IS NULL) AS nulls, count(*) FILTER (WHERE ${u} IS NOT NULL) AS ahead
       FROM ${quoteRelation(spec.sourceSchema, spec.table)} WHERE ${u} IS NULL OR ${aheadOf}
      GROUP BY 1 ORDER BY count(*) DESC, 1`,
    [],
  );
  const nulls = rows.reduce((a, r) => a + Number(r.nulls), 0);
  const ahead = rows.reduce((a, r) => a + Number(r.ahead), 0);
  const shown = rows
    .slice(0, 5)
    .map((r) => `${r.tenant === null ? 'NULL' : JSON.stringify(r.tenant)} (${[Number(r.nulls) > 0 ? `${Number(r.nulls)} NULL` : '', Number(r.ahead) > 0 ? `${Number(r.ahead)} ahead` : ''].filter(Boolean).join(', ')})`)
    .join(', ');
  return { nulls, ahead, shown };
}

/** The notice for `countUnplacedRows`, or undefined when every row has a usable `updated_at`. */
export function unplacedNotice(label: string, spec: ResolvedSpec, c: { nulls: number; ahead: number; shown: string }): string | undefined {
  if (c.nulls + c.ahead === 0) return undefined;
  const what = [
    c.nulls > 0 ? `${c.nulls} row(s) with ${spec.updatedColumn} NULL are never captured` : '',
    c.ahead > 0 ? `${c.ahead} row(s) with ${spec.updatedColumn} more than ${AHEAD_TOLERANCE_SECONDS / 60} minutes ahead of the OLTP's clock are not captured until that time` : '',
  ]
    .filter(Boolean)
    .join('; ');
  return `${label}: ${what} (watermark capture reads in ${spec.updatedColumn} order; the application must set it to the time of each change): ${c.shown}`;
}
