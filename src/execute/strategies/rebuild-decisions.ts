import type { Adapter } from '../../adapters/adapter.ts';
import type { Manifest, ModelNode } from '../../artifacts/manifest.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { readAbsorption, type Absorption } from '../../warehouse/deletion-epochs.ts';
import { checkVersions, WHOLE_RELATION, type VersionCheck } from '../../warehouse/relation-versions.ts';

/**
 * Which slices of an incremental model get the full rendering instead of a merge, and why. The
 * build (incremental.ts, writeWholeIncremental) and `tsform ls --rebuilds` both decide here, so
 * the preview says what the next run does.
 */

type Reader = Pick<Adapter, 'query' | 'describe'>;

export interface SliceRebuilds {
  /** Practices built from the full rendering. */
  full: string[];
  /** Practices merged with the `is_incremental` rendering (when their slice exists). */
  rest: string[];
  absorption: Absorption | undefined;
  /** Practices whose upstream lost rows since their slice was built. */
  stale: ReadonlySet<string>;
  versions: VersionCheck;
}

export async function sliceRebuilds(q: Reader, metaSchema: string, manifest: Manifest, node: ModelNode, tenants: readonly string[], fullRefresh: boolean): Promise<SliceRebuilds> {
  const absorption = await readAbsorption(q, metaSchema, manifest, node, tenants);
  const versions = await checkVersions(q, metaSchema, manifest, node, tenants);
  const stale = fullRefresh || !absorption ? new Set<string>() : absorption.stale;
  const inFull = (t: string) => stale.has(t) || versions.changed.has(t) || versions.unrecorded.has(t);
  return { full: tenants.filter(inFull), rest: tenants.filter((t) => !inFull(t)), absorption, stale, versions };
}

/** Practices rebuilt in full, counted by their first reason; `fresh` had no rows (new practices: not a rebuild). */
export interface RebuildCounts {
  deletedUpstream: number;
  changed: number;
  unrecorded: number;
  fresh: number;
}

export async function rebuildCounts(q: Reader, node: ModelNode, tenantColumn: string, r: SliceRebuilds): Promise<RebuildCounts> {
  const deletedUpstream = r.full.filter((t) => r.stale.has(t)).length;
  const changed = r.full.filter((t) => !r.stale.has(t) && r.versions.changed.has(t)).length;
  const unrecorded = r.full.filter((t) => !r.stale.has(t) && r.versions.unrecorded.has(t));
  const withRows = unrecorded.length > 0 ? await practicesWithRows(q, node, tenantColumn, unrecorded) : 0;
  return { deletedUpstream, changed, unrecorded: withRows, fresh: unrecorded.length - withRows };
}

/** The notes of a slice build: counts only, no practice named. */
export function rebuildNotes(c: RebuildCounts): string[] {
  const notes: string[] = [];
  if (c.deletedUpstream > 0) notes.push(`${c.deletedUpstream} practice(s) rebuilt in full: rows were deleted upstream since their slice was built`);
  if (c.changed > 0) notes.push(`${c.changed} practice(s) rebuilt in full: the model's SQL, or SQL upstream of it, changed since their slice was built`);
  if (c.unrecorded > 0) notes.push(`${c.unrecorded} practice(s) rebuilt in full: no record of the SQL their slice was built by (written by another materialization, or before tsform recorded versions)`);
  return notes;
}

/** A practice with no record and no rows is simply new; one with rows was built by other SQL. */
async function practicesWithRows(q: Reader, node: ModelNode, tenantColumn: string, tenants: readonly string[]): Promise<number> {
  if (!(await q.describe(node.schema, node.identifier))) return 0;
  const { rows } = await q.query(
    `SELECT count(DISTINCT ${quoteIdent(tenantColumn)}) AS n FROM ${quoteRelation(node.schema, node.identifier)} WHERE ${quoteIdent(tenantColumn)} = ANY($1::VARCHAR[])`,
    [[...tenants]],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Why a relation built whole (global, published research) is rebuilt rather than merged into. */
export type WholeRebuild = 'changed' | 'unrecorded' | undefined;

export async function wholeRebuild(q: Reader, metaSchema: string, manifest: Manifest, node: ModelNode): Promise<WholeRebuild> {
  const v = await checkVersions(q, metaSchema, manifest, node, [WHOLE_RELATION]);
  return v.changed.size > 0 ? 'changed' : v.unrecorded.size > 0 ? 'unrecorded' : undefined;
}

export const WHOLE_REBUILD_WHY: Record<NonNullable<WholeRebuild>, string> = {
  changed: 'its SQL, or SQL upstream of it, changed since it was built',
  unrecorded: 'no record of the SQL it was built by (written by another materialization, before tsform recorded versions, or rows of a practice withheld from research were removed upstream)',
};
