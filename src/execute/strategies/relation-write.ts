import type { Adapter, RelationInfo, Session } from '../../adapters/adapter.ts';
import type { ManifestNode } from '../../artifacts/manifest.ts';
import type { Plan } from '../../plan/plan.ts';
import { Codes, TsformError } from '../../errors.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { dropStage, ensureTargetTable, mergeSlice, replaceSlice, STAGE_TABLE, stageTenantRows, type Target } from '../slice-replace.ts';
import type { PolicyContext } from '../apply-policies.ts';
import { readAbsorption, recordAbsorbed, type Absorption } from '../../warehouse/deletion-epochs.ts';
import type { BuildContext, BuildOutcome } from '../strategy.ts';
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
  const existing = await ctx.adapter.describe(node.schema, node.identifier);
  // Read before the rows are: an epoch that moves in between is absorbed again next time, never lost.
  const absorbed = absorption ?? (await readAbsorption(ctx.adapter, ctx.metaSchema, ctx.manifest, node, tenants));
  return ctx.adapter.transaction(async (s) => {
    const staging = await stage(s, existing);
    const target = targetOf(node);
    const staged = await stageTenantRows(s, target, staging.select, tenants, ctx.tenantColumn);
    const notes = [...(staging.notes ?? []), ...(check ? await check(s, STAGE_TABLE, tenants) : [])];
    await ensureTargetTable(s, target, staged.columns, existing?.columns.map((c) => c.name), false, ctx.tenantColumn);
    if (!existing) await protect(ctx, s, node);
    if (staging.merge) await mergeSlice(s, target, staged.columns, node.unique_key, tenants, ctx.tenantColumn);
    else await replaceSlice(s, target, staged.columns, tenants, ctx.tenantColumn);
    if (absorbed) await recordAbsorbed(s, ctx.metaSchema, node, absorbed, tenants);
    await dropStage(s);
    await staging.cleanup?.(s);
    return { rows: staged.rows, notes };
  }, { timeoutMs: ctx.nodeTimeoutMs });
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
  const existing = await ctx.adapter.describe(node.schema, node.identifier);
  return ctx.adapter.transaction(async (s) => {
    const staging = await stage(s, existing);
    await s.createTempTableAs(STAGE_TABLE, staging.select, []);
    const notes = [...(staging.notes ?? []), ...(check ? await check(s, STAGE_TABLE) : [])];
    const probe = await s.query(`SELECT count(*) AS n FROM ${quoteIdent(STAGE_TABLE)}`);
    const columns = (await s.query(`SELECT * FROM ${quoteIdent(STAGE_TABLE)} LIMIT 0`)).columns;
    const existingCols = existing?.kind === 'table' ? existing.columns.map((c) => c.name) : undefined;
    if (existing?.kind === 'view') await s.query(`DROP VIEW ${rel}`);
    const sameShape = existingCols !== undefined && existingCols.join('\u0000') === columns.join('\u0000');
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

/** `schema.identifier` of every relation a plan builds (models; an ephemeral one is no relation). */
export function builtRelations(plan: Plan, nodes: Readonly<Record<string, ManifestNode>>): Set<string> {
  const out = new Set<string>();
  for (const step of plan.steps) {
    const node = nodes[step.id];
    if (step.build && node?.kind === 'model' && node.materialized !== 'ephemeral') out.add(`${node.schema}.${node.identifier}`);
  }
  return out;
}

/**
 * `--full-refresh` of tenant-scoped tables (`nodes`, downstream first): each dropped once, before
 * any batch rebuilds its slice (by the run, or by a distributed run's coordinator before it sends
 * any job). A view that reads one of them (PostgreSQL) is dropped with it when the run rebuilds
 * that view (`rebuilt`: `schema.identifier` of every relation the run builds); a view the run
 * does not rebuild refuses the whole refresh (TSF310) before anything is dropped.
 */
export async function dropForFullRefresh(adapter: Adapter, nodes: readonly ManifestNode[], rebuilt: ReadonlySet<string>): Promise<void> {
  const existing: { node: ManifestNode; kind: string; rel: string }[] = [];
  for (const node of nodes) {
    const info = await adapter.describe(node.schema, node.identifier);
    if (info) existing.push({ node, kind: info.kind, rel: quoteRelation(node.schema, node.identifier) });
  }
  if (existing.length === 0) return;
  await adapter.transaction(async (s) => {
    // A view another session creates over one of these meanwhile would go with the CASCADE below
    // without having been checked: with the relations locked first, its CREATE VIEW waits for
    // this transaction (and then fails), or this check waits for its commit and sees it.
    if (adapter.kind === 'postgres') for (const e of existing) await s.query(`LOCK TABLE ${e.rel} IN ACCESS EXCLUSIVE MODE`);
    const drops: string[] = [];
    const kept: string[] = [];
    for (const { node, kind, rel } of existing) {
      const readers = (await adapter.dependentViews?.(node.schema, node.identifier, s)) ?? [];
      for (const v of readers) if (!rebuilt.has(`${v.schema}.${v.name}`)) kept.push(`${v.schema}.${v.name} (reads ${node.schema}.${node.identifier})`);
      drops.push(`DROP ${kind === 'view' ? 'VIEW' : 'TABLE'} IF EXISTS ${rel}${readers.length > 0 ? ' CASCADE' : ''}`);
    }
    if (kept.length > 0) {
      throw new TsformError(
        Codes.fullRefreshDependents,
        `--full-refresh drops and rebuilds tables that views outside this run read: ${[...new Set(kept)].join(', ')}. Select those views too (e.g. --select <model>+), or drop them first; nothing was dropped`,
      );
    }
    for (const sql of drops) await s.query(sql);
  });
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
