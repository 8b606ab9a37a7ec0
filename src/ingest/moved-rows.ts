import type { Session } from '../adapters/adapter.ts';
import { countDeletion, relationKey } from '../warehouse/deletion-epochs.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import type { ResolvedSpec } from './capture-spec.ts';
import type { OltpSource } from './oltp-source.ts';
import type { HeldElsewhere } from './slice-upsert.ts';

/**
 * A row whose practice_id changed in the OLTP reaches its new practice with that practice's
 * next chunk, but its old practice's capture never sees it again (it reads only its own rows):
 * the copy would stay in the old slice, one record in two practices' data. So when a chunk
 * brings keys that other slices also hold, the OLTP is asked which of those (practice, key)
 * pairs it still has, the chunk's own practices' pairs included: the old practice's chunk may
 * have read its copy in a snapshot older than the move and commit after the new practice's
 * chunk did. The copies it no longer has are removed from raw, in the chunk's transaction, and
 * count as a deletion in those practices (so their incremental models drop them too).
 *
 * Returns the practices whose slices lost rows, and how many rows went. The same id at two practices (the OLTP key is
 * (practice, id)) is kept at both.
 */
export async function removeMovedRows(
  s: Session,
  oltp: OltpSource,
  spec: ResolvedSpec,
  metaSchema: string,
  elsewhere: readonly HeldElsewhere[],
  /** The practices whose rows the chunk wrote. */
  own: readonly string[],
): Promise<{ tenants: string[]; rows: number }> {
  if (elsewhere.length === 0) return { tenants: [], rows: 0 };
  const pairs = new Map<string, HeldElsewhere>();
  for (const e of elsewhere) for (const tenant of [e.tenant, ...own]) pairs.set([tenant, ...e.key].join('\u0000'), { tenant, key: e.key });
  const candidates = [...pairs.values()];
  const columns = [spec.tenantColumn, ...spec.key];
  const arrays = columns.map((_, i) => (i === 0 ? candidates.map((e) => e.tenant) : candidates.map((e) => e.key[i - 1]!)));
  const tuple = columns.map((c) => `${quoteIdent(c)}::text`).join(', ');
  const { rows } = await oltp.query(
    `SELECT ${tuple} FROM ${quoteRelation(spec.sourceSchema, spec.table)}
      WHERE (${tuple}) IN (SELECT * FROM unnest(${columns.map((_, i) => `$${i + 1}::text[]`).join(', ')}))`,
    arrays,
  );
  const present = new Set(rows.map((r) => columns.map((c) => String(r[c])).join('\u0000')));
  const gone = candidates.filter((e) => !present.has([e.tenant, ...e.key].join('\u0000')));
  if (gone.length === 0) return { tenants: [], rows: 0 };
  const goneArrays = columns.map((_, i) => (i === 0 ? gone.map((e) => e.tenant) : gone.map((e) => e.key[i - 1]!)));
  // RETURNING: a chunk's own practice is asked about every such key, and most of them hold none
  const removed = await s.query(
    `DELETE FROM ${quoteRelation(spec.rawSchema, spec.table)}
      WHERE (${columns.map((c) => `CAST(${quoteIdent(c)} AS VARCHAR)`).join(', ')}) IN
            (SELECT ${columns.map((_, i) => `unnest($${i + 1}::VARCHAR[])`).join(', ')})
      RETURNING CAST(${quoteIdent(spec.tenantColumn)} AS VARCHAR) AS t`,
    goneArrays,
  );
  const lost = [...new Set(removed.rows.map((r) => String(r.t)))].sort();
  await countDeletion(s, metaSchema, relationKey({ schema: spec.rawSchema, identifier: spec.table }), lost);
  return { tenants: lost, rows: removed.rows.length };
}
