import type { Adapter, Session } from '../adapters/adapter.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { safeType } from '../warehouse/load-csv.ts';
import { readCommitHorizon, readSourceShape, type ResolvedSpec } from './capture-chunk.ts';
import { rawRowsTurn } from './chunk-transaction.ts';
import { removeMovedRows } from './moved-rows.ts';
import type { OltpSource } from './oltp-source.ts';
import type { HeldElsewhere } from './slice-upsert.ts';
import { readWatermarks, TABLE_WIDE, writeWatermark, type Watermark } from './watermarks.ts';

/** The sweep's position, kept in the watermark table as a table-wide one. */
export const MOVED_AWAY = { stream: 'moved-away', tenant: TABLE_WIDE } as const;
const PAGE_ROWS = 50_000;

/**
 * A row can move to a practice tsform does not capture (one not in tenants.yml): no chunk ever
 * brings its key again, so the moved-row check of a chunk (moved-rows.ts) never meets the old
 * practice's copy, and that practice would keep a record that is no longer its own. So, when
 * the OLTP has rows of practices outside `known`, the keys of those changed since the last sweep
 * (below the commit horizon, in (updated, practice, key) order) are looked up in raw, and copies at known practices whose (practice, key) the OLTP no
 * longer has are removed, with a deletion epoch, page by page, each page's removal and position
 * in one transaction taken in turn with the table's chunks (rawRowsTurn). The first sweep of a
 * raw table holding rows reads every such row once; of an empty one, none. Returns the practices
 * that lost rows and how many rows went.
 */
export async function sweepMovedAway(wh: Adapter, oltp: OltpSource, spec: ResolvedSpec, metaSchema: string, known: readonly string[]): Promise<{ tenants: string[]; rows: number }> {
  const lost = new Set<string>();
  let removed = 0;
  let after = (await readWatermarks(wh, metaSchema, spec.label, MOVED_AWAY.stream, [MOVED_AWAY.tenant])).get(MOVED_AWAY.tenant);
  if (after === undefined && !(await holdsKnownRows(wh, spec, known))) {
    // Nothing in raw can be a stale copy yet: the sweep starts at the commit horizon instead of
    // reading every row of every other practice (a move still in flight is stamped after it).
    const start = { updatedAt: await readCommitHorizon(oltp, spec.settleSeconds), key: ['', ...spec.key.map(() => '')] };
    await wh.transaction((s) => writeWatermark(s, metaSchema, spec.label, MOVED_AWAY.tenant, MOVED_AWAY.stream, start, 0), { serializeOn: rawRowsTurn(spec) });
    return { tenants: [], rows: 0 };
  }
  for (;;) {
    const page = await readPage(oltp, spec, known, after);
    if (page.keys.length === 0) break;
    const last = page.last!;
    const gone = await wh.transaction(
      async (s) => {
        const holders = await heldByKnown(s, spec, known, page.keys);
        const gone = holders.length === 0 ? { tenants: [], rows: 0 } : await removeMovedRows(s, oltp, spec, metaSchema, holders, []);
        await writeWatermark(s, metaSchema, spec.label, MOVED_AWAY.tenant, MOVED_AWAY.stream, last, page.keys.length);
        return gone;
      },
      { serializeOn: rawRowsTurn(spec) },
    );
    for (const t of gone.tenants) lost.add(t);
    removed += gone.rows;
    after = last;
    if (page.keys.length < PAGE_ROWS) break;
  }
  return { tenants: [...lost].sort(), rows: removed };
}

async function holdsKnownRows(wh: Adapter, spec: ResolvedSpec, known: readonly string[]): Promise<boolean> {
  const { rows } = await wh.query(`SELECT 1 AS one FROM ${quoteRelation(spec.rawSchema, spec.table)} WHERE CAST(${quoteIdent(spec.tenantColumn)} AS VARCHAR) = ANY($1::VARCHAR[]) LIMIT 1`, [[...known]]);
  return rows.length > 0;
}

/** Keys of rows at practices outside `known`, after `after`, below the commit horizon. */
async function readPage(oltp: OltpSource, spec: ResolvedSpec, known: readonly string[], after: Watermark | undefined): Promise<{ keys: string[][]; last?: Watermark }> {
  const horizon = await readCommitHorizon(oltp, spec.settleSeconds);
  return oltp.readTransaction(async (r) => {
    const shape = await readSourceShape(r, spec);
    const [upd] = shape.order;
    const tc = quoteIdent(spec.tenantColumn);
    // the position: updated, practice, key (a key alone is not unique across practices)
    const position = [quoteIdent(upd!.name), `coalesce(${tc}::text, '')`, ...spec.key.map((k) => `${quoteIdent(k)}::text`)];
    const params: (string | string[])[] = [[...known]];
    const where = [`(${tc} IS NULL OR NOT (${tc}::text = ANY($1::text[])))`];
    if (upd!.sourceType === 'timestamp with time zone') {
      params.push(horizon);
      where.push(`${quoteIdent(upd!.name)} < $${params.length}::timestamptz`);
    }
    if (after) {
      const first = params.length + 1;
      params.push(after.updatedAt, ...after.key);
      where.push(`(${position.join(', ')}) > (CAST($${first} AS ${safeType(upd!.sourceType)}), ${after.key.map((_, i) => `$${first + 1 + i}::text`).join(', ')})`);
    }
    const { rows } = await r.query(
      `SELECT ${quoteIdent(upd!.name)}::text AS __tsf_u, coalesce(${tc}::text, '') AS __tsf_t, ${spec.key.map((k, i) => `${quoteIdent(k)}::text AS __tsf_k${i}`).join(', ')}
         FROM ${quoteRelation(spec.sourceSchema, spec.table)} WHERE ${where.join(' AND ')}
        ORDER BY ${position.join(', ')} LIMIT ${PAGE_ROWS}`,
      params,
    );
    const keys = rows.map((row) => spec.key.map((_, i) => String(row[`__tsf_k${i}`])));
    const end = rows.at(-1);
    return { keys, last: end && { updatedAt: String(end.__tsf_u), key: [String(end.__tsf_t), ...keys.at(-1)!] } };
  });
}

/** Copies in raw, at known practices, of these keys. */
async function heldByKnown(s: Session, spec: ResolvedSpec, known: readonly string[], keys: readonly string[][]): Promise<HeldElsewhere[]> {
  const tc = quoteIdent(spec.tenantColumn);
  const { rows } = await s.query(
    `SELECT DISTINCT CAST(t.${tc} AS VARCHAR) AS __tsf_tenant, ${spec.key.map((k, i) => `CAST(t.${quoteIdent(k)} AS VARCHAR) AS __tsf_k${i}`).join(', ')}
       FROM ${quoteRelation(spec.rawSchema, spec.table)} AS t
       JOIN (SELECT ${spec.key.map((_, i) => `unnest($${i + 2}::VARCHAR[]) AS k${i}`).join(', ')}) AS l
         ON ${spec.key.map((k, i) => `CAST(t.${quoteIdent(k)} AS VARCHAR) = l.k${i}`).join(' AND ')}
      WHERE CAST(t.${tc} AS VARCHAR) = ANY($1::VARCHAR[])`,
    [[...known], ...spec.key.map((_, i) => keys.map((k) => k[i]!))],
  );
  return rows.map((r) => ({ tenant: String(r.__tsf_tenant), key: spec.key.map((_, i) => String(r[`__tsf_k${i}`])) }));
}

/** The notice of a sweep that removed rows: counts and practice ids only. */
export function movedAwayNotice(where: string, away: { tenants: readonly string[]; rows: number }): string {
  return `${where}: ${away.rows} row(s) had moved to a practice that is not in tenants.yml: removed from raw at ${away.tenants.join(', ')}`;
}
