import type { Adapter, Session } from '../adapters/adapter.ts';
import { safeDbMessage } from '../adapters/safe-message.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { safeType } from '../warehouse/load-csv.ts';
import { readCommitHorizon, readSourceShape, type ResolvedSpec } from './capture-chunk.ts';
import { rawRowsTurn } from './chunk-transaction.ts';
import { removeMovedRows } from './moved-rows.ts';
import type { OltpSource } from './oltp-source.ts';
import type { HeldElsewhere } from './slice-upsert.ts';
import { hasIndexLedBy } from './oltp-index.ts';
import { readWatermarks, TABLE_WIDE, writeWatermark, type Watermark } from './watermarks.ts';

/**
 * The sweep's position, kept in the watermark table as a table-wide one. The stream's name is
 * from when the sweep looked only for rows moved away to practices not in tenants.yml; it is
 * stored in warehouses, so it stays.
 */
export const SWEEP_POSITION = { stream: 'moved-away', tenant: TABLE_WIDE } as const;
const PAGE_ROWS = 50_000;

/** What a sweep removed: every stale copy, and among them those of rows now at practices not in tenants.yml. */
export interface MoveSweep {
  removed: { tenants: string[]; rows: number };
  /** Copies of rows that moved to a practice tsform does not capture (they never arrive in any chunk). */
  away: { tenants: string[]; rows: number };
}

/**
 * A moved row's new practice's chunk removes the old practice's copy (moved-rows.ts), but only
 * when that chunk runs: a run of the old practice alone before it (per-practice runs at each
 * practice's own hour) would build the old practice's models with a record that is no longer
 * its own, and a row moved to a practice tsform does not capture (not in tenants.yml) arrives in
 * no chunk at all. So each run first sweeps the keys of every row changed since the last sweep,
 * at any practice (below the commit horizon, in (updated, practice, key) order), looks them up in
 * raw at practices other than the row's practice now, and removes the copies whose
 * (practice, key) the OLTP no longer has, with a deletion epoch, page by page, each page's
 * removal and position in one transaction taken in turn with the table's chunks (rawRowsTurn).
 * The position is table-wide, so over a day of per-practice runs every change is swept once.
 * The first sweep of a raw table holding rows reads every OLTP row once; of an empty one, none.
 */
export async function sweepMovedRows(
  wh: Adapter,
  oltp: OltpSource,
  spec: ResolvedSpec,
  metaSchema: string,
  /** tenants.yml's practices: copies of rows now at any other practice are named in the notice. */
  known: readonly string[],
  pageRows = PAGE_ROWS,
): Promise<MoveSweep> {
  const removed = new Tally();
  const away = new Tally();
  const knownSet = new Set(known);
  let after = (await readWatermarks(wh, metaSchema, spec.label, SWEEP_POSITION.stream, [SWEEP_POSITION.tenant])).get(SWEEP_POSITION.tenant);
  if (after === undefined && !(await holdsRows(wh, spec))) {
    // Nothing in raw can be a stale copy yet: the sweep starts at the commit horizon instead of
    // reading every OLTP row (a move still in flight is stamped after it).
    const start = { updatedAt: await readCommitHorizon(oltp, spec.settleSeconds), key: ['', ...spec.key.map(() => '')] };
    await wh.transaction((s) => writeWatermark(s, metaSchema, spec.label, SWEEP_POSITION.tenant, SWEEP_POSITION.stream, start, 0), { serializeOn: rawRowsTurn(spec) });
    return { removed: removed.result(), away: away.result() };
  }
  for (;;) {
    const page = await readPage(oltp, spec, after, pageRows);
    if (page.rows.length === 0) break;
    const last = page.last!;
    const gone = await wh.transaction(
      async (s) => {
        const holders = await heldElsewhere(s, spec, page.rows);
        // rows now at practices tsform does not capture are named in a notice: they leave tsform's view
        const toUnknown = holders.filter((h) => !knownSet.has(h.now));
        const toKnown = holders.filter((h) => knownSet.has(h.now));
        const gone = { away: await removeMovedRows(s, oltp, spec, metaSchema, toUnknown, []), other: await removeMovedRows(s, oltp, spec, metaSchema, toKnown, []) };
        await writeWatermark(s, metaSchema, spec.label, SWEEP_POSITION.tenant, SWEEP_POSITION.stream, last, page.rows.length);
        return gone;
      },
      { serializeOn: rawRowsTurn(spec) },
    );
    away.add(gone.away);
    removed.add(gone.away);
    removed.add(gone.other);
    after = last;
    if (page.rows.length < pageRows) break;
  }
  return { removed: removed.result(), away: away.result() };
}

class Tally {
  private readonly tenants = new Set<string>();
  private rows = 0;
  add(r: { tenants: readonly string[]; rows: number }): void {
    for (const t of r.tenants) this.tenants.add(t);
    this.rows += r.rows;
  }
  result(): { tenants: string[]; rows: number } {
    return { tenants: [...this.tenants].sort(), rows: this.rows };
  }
}

async function holdsRows(wh: Adapter, spec: ResolvedSpec): Promise<boolean> {
  return (await wh.query(`SELECT 1 AS one FROM ${quoteRelation(spec.rawSchema, spec.table)} LIMIT 1`)).rows.length > 0;
}

/** A changed row as the sweep reads it: its practice now ('' when NULL) and its key. */
interface ChangedRow {
  tenant: string;
  key: string[];
}

/** Rows changed after `after`, at any practice, below the commit horizon. */
async function readPage(oltp: OltpSource, spec: ResolvedSpec, after: Watermark | undefined, pageRows: number): Promise<{ rows: ChangedRow[]; last?: Watermark }> {
  const horizon = await readCommitHorizon(oltp, spec.settleSeconds);
  return oltp.readTransaction(async (r) => {
    const shape = await readSourceShape(r, spec);
    const [upd] = shape.order;
    const updated = quoteIdent(upd!.name);
    const tc = quoteIdent(spec.tenantColumn);
    // the position: updated, practice, key (a key alone is not unique across practices)
    const position = [updated, `coalesce(${tc}::text, '')`, ...spec.key.map((k) => `${quoteIdent(k)}::text`)];
    const params: (string | number)[] = [];
    const where: string[] = [];
    if (upd!.sourceType === 'timestamp with time zone') {
      params.push(horizon);
      where.push(`${updated} < $${params.length}::timestamptz`);
    }
    if (after) {
      const first = params.length + 1;
      params.push(after.updatedAt, ...after.key);
      const from = `CAST($${first} AS ${safeType(upd!.sourceType)})`;
      // the plain bound on the updated column lets an index led by it serve the row comparison
      where.push(`${updated} >= ${from}`, `(${position.join(', ')}) > (${from}, ${after.key.map((_, i) => `$${first + 1 + i}::text`).join(', ')})`);
    }
    params.push(pageRows);
    const { rows } = await r.query(
      `SELECT ${updated}::text AS __tsf_u, coalesce(${tc}::text, '') AS __tsf_t, ${spec.key.map((k, i) => `${quoteIdent(k)}::text AS __tsf_k${i}`).join(', ')}
         FROM ${quoteRelation(spec.sourceSchema, spec.table)}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}
        ORDER BY ${position.join(', ')} LIMIT $${params.length}::int`,
      params,
    );
    const changed = rows.map((row) => ({ tenant: String(row.__tsf_t), key: spec.key.map((_, i) => String(row[`__tsf_k${i}`])) }));
    const end = rows.at(-1);
    return { rows: changed, last: end && { updatedAt: String(end.__tsf_u), key: [String(end.__tsf_t), ...changed.at(-1)!.key] } };
  });
}

/**
 * Copies in raw, at practices other than the row's practice now, of these changed rows' keys:
 * the candidates for removal (removeMovedRows asks the OLTP about each again, so a row that moved
 * back since the page was read stays). Any practice's: the position is table-wide, so a sweep
 * that looked only at some would leave the others' copies behind it for good.
 */
async function heldElsewhere(s: Session, spec: ResolvedSpec, changed: readonly ChangedRow[]): Promise<(HeldElsewhere & { now: string })[]> {
  const tc = quoteIdent(spec.tenantColumn);
  const { rows } = await s.query(
    `SELECT DISTINCT CAST(t.${tc} AS VARCHAR) AS __tsf_tenant, l.cur AS __tsf_now, ${spec.key.map((k, i) => `CAST(t.${quoteIdent(k)} AS VARCHAR) AS __tsf_k${i}`).join(', ')}
       FROM ${quoteRelation(spec.rawSchema, spec.table)} AS t
       JOIN (SELECT unnest($1::VARCHAR[]) AS cur, ${spec.key.map((_, i) => `unnest($${i + 2}::VARCHAR[]) AS k${i}`).join(', ')}) AS l
         ON ${spec.key.map((k, i) => `CAST(t.${quoteIdent(k)} AS VARCHAR) = l.k${i}`).join(' AND ')}
      WHERE CAST(t.${tc} AS VARCHAR) <> l.cur`,
    [changed.map((c) => c.tenant), ...spec.key.map((_, i) => changed.map((c) => c.key[i]!))],
  );
  return rows.map((r) => ({ tenant: String(r.__tsf_tenant), now: String(r.__tsf_now), key: spec.key.map((_, i) => String(r[`__tsf_k${i}`])) }));
}

/**
 * Without an index led by the updated column, each run's sweep reads the whole OLTP table (it
 * still runs: a record at a practice that no longer has it is a privacy fault, not a cost).
 */
export async function sweepIndexGap(oltp: OltpSource, spec: ResolvedSpec): Promise<string | undefined> {
  if (await hasIndexLedBy(oltp, spec.sourceSchema, spec.table, spec.updatedColumn)) return undefined;
  return `no index of ${spec.label} starts with column "${spec.updatedColumn}": each run's sweep for rows moved between practices reads the whole table; add one (CREATE INDEX ON ${quoteRelation(spec.sourceSchema, spec.table)} (${quoteIdent(spec.updatedColumn)}))`;
}

/** The notice of a sweep that removed rows: counts and practice ids only. */
export function movedAwayNotice(where: string, away: MoveSweep['away']): string {
  return `${where}: ${away.rows} row(s) had moved to a practice that is not in tenants.yml: removed from raw at ${away.tenants.join(', ')}`;
}

/**
 * The notice of a sweep that failed (after retries): the run's practices are captured and built
 * all the same, and a row that moved away since the last sweep may stay in its old practice's
 * models until a sweep succeeds.
 */
export function sweepFailedNotice(err: unknown): string {
  return `the sweep for rows moved between practices failed (tried again next run; until then a moved row may stay at its old practice): ${safeDbMessage(err)}`;
}
