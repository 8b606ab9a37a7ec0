import type { RelationInfo, Session } from '../../adapters/adapter.ts';
import type { ManifestNode } from '../../artifacts/manifest.ts';
import { Codes, TsformError } from '../../errors.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { dropStage, ensureTargetTable, mergeSlice, replaceSlice, STAGE_TABLE, stageTenantRows, type Target } from '../slice-replace.ts';
import type { PolicyContext } from '../apply-policies.ts';
import { readAbsorption, recordAbsorbed, type Absorption } from '../../warehouse/deletion-epochs.ts';
import type { BuildContext, BuildOutcome } from '../strategy.ts';
import { claimRecreate, recreateForRefresh, refreshPending, relationKey, shapeOf } from '../full-refresh.ts';
import { loadTableName } from '../../warehouse/load-csv.ts';

/**
 * The two ways a table is written, shared by the strategies: a batch's slice of a tenant-scoped
 * table, or a whole relation. Both stage the rows first, check them, and write in the
 * transaction that creates the table, so no other session ever sees it half-built or unprotected.
 */

/** What a strategy puts into the staged rows, inside the write's transaction. */
export interface Staging {
  select: string;
  notes?: string[];
  /** Run after the write (drop a load table). */
  cleanup?: (s: Session) => Promise<void>;
}

export interface SliceStaging extends Staging {
  /** Merge on the node's unique_key instead of replacing the slice. */
  merge: boolean;
}

/** Checks on the staged rows (`STAGE_TABLE`) before anything is written; may add notes. */
export type StagedCheck = (s: Session, stageTable: string, tenants?: readonly string[]) => Promise<string[]>;

/** Applies the node's row-level security; called in the transaction that creates its table. */
export function protect(ctx: BuildContext, s: Session, node: ManifestNode): Promise<void> {
  return protectWith(ctx.policy, s, node);
}

/** protect() for callers without a BuildContext (backfill): the policies alone decide. */
export async function protectWith(policy: PolicyContext | undefined, s: Session, node: ManifestNode): Promise<void> {
  const rel = policy?.relations.get(node.name);
  if (rel && policy) await s.runScript(policy.renderer.protect(rel));
}

export function targetOf(node: ManifestNode): Target {
  return { schema: node.schema, identifier: node.identifier, name: node.name };
}

/**
 * The batch's slice of a tenant-scoped table, replaced (or merged) atomically; nothing outside it
 * is touched. The deletions its upstream had absorbed before the rows were read are recorded
 * with the slice (deletion-epochs.ts); pass `absorption` when the caller has read them already.
 */
export async function writeSlice(
  ctx: BuildContext,
  node: ManifestNode,
  tenants: readonly string[],
  stage: (s: Session, existing: RelationInfo | undefined) => Promise<SliceStaging>,
  check?: StagedCheck,
  absorption?: Absorption,
): Promise<BuildOutcome> {
  const existing = refusePartition(node, await ctx.adapter.describe(node.schema, node.identifier));
  // Read before the rows are: an epoch that moves in between is absorbed again next time, never lost.
  const absorbed = absorption ?? (await readAbsorption(ctx.adapter, ctx.metaSchema, ctx.manifest, node, tenants));
  const refresh = ctx.fullRefreshId !== undefined && (await refreshPending(ctx.adapter, ctx.metaSchema, ctx.fullRefreshId, node)) ? ctx.fullRefreshId : undefined;
  // The model was a view until now: the first batch to write replaces it, the others wait their turn and find the table.
  const viewInPlace = refresh === undefined && existing?.kind === 'view';
  const turn = refresh !== undefined ? { serializeOn: `full-refresh ${relationKey(node)}` } : viewInPlace ? { serializeOn: `view to table ${relationKey(node)}` } : {};
  return ctx.adapter.transaction(async (s) => {
    // Whether this write creates the table again (full-refresh.ts), and the table as it is after the writes before it.
    const rebuilt = refresh === undefined ? undefined : await claimRecreate(s, ctx.metaSchema, refresh, node);
    const before = refresh === undefined ? (viewInPlace ? await dropViewInPlace(ctx, s, node) : existing) : await shapeOf(s, node.schema, node.identifier);
    // A view's rows are not this table's: an incremental model starts its slice afresh.
    const staging = await stage(s, viewInPlace ? before && { ...before, kind: 'table' } : existing);
    const target = targetOf(node);
    const staged = await stageTenantRows(s, target, staging.select, tenants, ctx.tenantColumn);
    const notes = [...(staging.notes ?? []), ...(check ? await check(s, STAGE_TABLE, tenants) : [])];
    if (rebuilt) {
      const practices = ctx.tenants.map((t) => t.id);
      notes.push(...(await recreateForRefresh(s, { adapter: ctx.adapter, node, tenantColumn: ctx.tenantColumn, practices, tenants, rebuilt, protect: (x) => protect(ctx, x, node) }, before)));
    } else {
      await ensureTargetTable(s, target, staged.columns, before?.columns.map((c) => c.name), false, ctx.tenantColumn);
      if (!before || !(await protectedAlready(ctx, s, node))) await protect(ctx, s, node);
      if (viewInPlace && !before) notes.push(`${node.name} was a view until this run and is a table now: practices not built in this run read no rows of it until they are`);
    }
    if (staging.merge) await mergeSlice(s, target, staged.columns, node.unique_key, tenants, ctx.tenantColumn);
    else await replaceSlice(s, target, staged.columns, tenants, ctx.tenantColumn);
    if (absorbed) await recordAbsorbed(s, ctx.metaSchema, node, absorbed, tenants);
    await dropStage(s);
    await staging.cleanup?.(s);
    return { rows: staged.rows, notes };
  }, { timeoutMs: ctx.nodeTimeoutMs, ...turn });
}

/**
 * Whether a tenant-scoped table has row-level security on (PostgreSQL with policies; elsewhere
 * there is nothing to put on). A table built while the model was shared or global has none: its
 * slices were written into it unprotected, every practice's rows in one table (red-team,
 * 2026-12-07). The templates are idempotent, so protecting it again is safe.
 */
async function protectedAlready(ctx: BuildContext, s: Session, node: ManifestNode): Promise<boolean> {
  if (!ctx.policy?.relations.has(node.name) || ctx.adapter.kind !== 'postgres') return true;
  const { rows } = await s.query('SELECT c.relrowsecurity AND c.relforcerowsecurity AS secured FROM pg_class c WHERE c.oid = to_regclass($1)', [quoteRelation(node.schema, node.identifier)]);
  return rows[0]?.secured === true;
}

/**
 * Drops the view that stands where a tenant-scoped table goes (its model was a view before this
 * run) and returns the relation as it is now: undefined, or the table an earlier batch created.
 * Writing a slice into the view instead wrote into the relation it reads: PostgreSQL's simple
 * views are updatable, so the slice's DELETE and INSERT emptied every column of staging that the
 * view left out, for every practice (red-team, 2026-12-07). Views over the view would be dropped
 * with it, so then nothing is written and `--full-refresh` is named.
 */
async function dropViewInPlace(ctx: BuildContext, s: Session, node: ManifestNode): Promise<RelationInfo | undefined> {
  const now = await shapeOf(s, node.schema, node.identifier);
  if (now?.kind !== 'view') return now && { ...now, kind: 'table' };
  const readers = (await ctx.adapter.dependentViews?.(node.schema, node.identifier, s)) ?? [];
  if (readers.length > 0) {
    throw new TsformError(
      Codes.schemaChanged,
      `${node.name} is a table now and was a view, which views read (${readers.map((r) => `${r.schema}.${r.name}`).join(', ')}); nothing was written. Run with --full-refresh to create it again with the views over it.`,
    );
  }
  await s.query(`DROP VIEW ${quoteRelation(node.schema, node.identifier)}`);
  return undefined;
}

/**
 * A relation of the model's name that is another table's partition (PostgreSQL): compile refuses
 * names of the current models' partitions (TSF205), but a renamed model's table keeps its own;
 * writing into one failed every practice, and `--full-refresh` dropped it with its rows
 * (red-team, 2026-12-07: the old table's DEFAULT partition, 1,102 of 1,120 rows).
 */
function refusePartition(node: ManifestNode, existing: RelationInfo | undefined): RelationInfo | undefined {
  if (!existing?.partitionOf) return existing;
  throw new TsformError(
    Codes.schemaChanged,
    `${node.name}: ${relationKey(node)} is a partition of ${existing.partitionOf} (a table this project no longer builds, or not tsform's); nothing was written. Rename the model, or drop that table first`,
  );
}

export interface WholeWrite {
  /** Follow the staged rows' shape when it changed (seeds, full rebuilds); otherwise keep the table's. */
  reshape: boolean;
  /** Merge on unique_key when the table keeps its shape (incremental); otherwise replace every row. */
  mergeWhenSameShape: boolean;
}

/** A relation built once per run: staged, checked, then its rows replaced (or merged). */
export async function writeWhole(
  ctx: BuildContext,
  node: ManifestNode,
  stage: (s: Session, existing: RelationInfo | undefined) => Promise<Staging>,
  how: WholeWrite,
  check?: StagedCheck,
): Promise<BuildOutcome> {
  const rel = quoteRelation(node.schema, node.identifier);
  const existing = refusePartition(node, await ctx.adapter.describe(node.schema, node.identifier));
  return ctx.adapter.transaction(async (s) => {
    const staging = await stage(s, existing);
    await s.createTempTableAs(STAGE_TABLE, staging.select, []);
    const notes = [...(staging.notes ?? []), ...(check ? await check(s, STAGE_TABLE) : [])];
    const probe = await s.query(`SELECT count(*) AS n FROM ${quoteIdent(STAGE_TABLE)}`);
    const columns = (await s.query(`SELECT * FROM ${quoteIdent(STAGE_TABLE)} LIMIT 0`)).columns;
    const existingCols = existing?.kind === 'table' ? existing.columns.map((c) => c.name) : undefined;
    if (existing?.kind === 'view') await s.query(`DROP VIEW ${rel}`);
    // Names, order and types: a column whose type changed would cast the new rows (a rebuild follows the new type).
    const sameShape =
      existingCols !== undefined && existingCols.join('\u0000') === columns.join('\u0000') && (await s.columnTypeChanges(node.schema, node.identifier, STAGE_TABLE)).length === 0;
    await ensureTargetTable(s, targetOf(node), columns, existingCols, how.reshape && existingCols !== undefined && !sameShape);
    if (how.mergeWhenSameShape && sameShape) {
      await mergeSlice(s, targetOf(node), columns, node.unique_key, undefined, ctx.tenantColumn);
    } else {
      if (sameShape) await s.query(`DELETE FROM ${rel}`);
      const cols = columns.map(quoteIdent).join(', ');
      await s.query(`INSERT INTO ${rel} (${cols}) SELECT ${cols} FROM ${quoteIdent(STAGE_TABLE)}`);
    }
    await dropStage(s);
    await staging.cleanup?.(s);
    return { rows: new Map([[null, Number(probe.rows[0]?.n ?? 0)]]), notes };
  }, { timeoutMs: ctx.nodeTimeoutMs });
}

/** Text rows into a fresh VARCHAR load table in the meta schema (seeds, tenants.yml); returns its name. */
export async function loadTextTable(ctx: BuildContext, s: Session, header: readonly string[], rows: (string | null)[][]): Promise<string> {
  const loadTable = loadTableName();
  await s.query(`CREATE TABLE ${quoteRelation(ctx.metaSchema, loadTable)} (${header.map((h) => `${quoteIdent(h)} VARCHAR`).join(', ')})`);
  await s.insertText(ctx.metaSchema, loadTable, header, rows);
  return loadTable;
}

/** Drops a load table in the meta schema (the cleanup of strategies that load files). */
export function dropLoadTable(metaSchema: string, loadTable: string): (s: Session) => Promise<void> {
  return async (s) => {
    await s.query(`DROP TABLE ${quoteRelation(metaSchema, loadTable)}`);
  };
}
