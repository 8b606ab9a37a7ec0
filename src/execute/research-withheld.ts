import type { Adapter } from '../adapters/adapter.ts';
import { manifestNodes, vaultNode, type Manifest, type ManifestNode, type ModelNode } from '../artifacts/manifest.ts';
import { compiledGraph, downstreamOf } from '../graph/dag.ts';
import { forgetVersions, WHOLE_RELATION } from '../warehouse/relation-versions.ts';
import { VAULT_LINKAGE_KEYS, VAULT_LINKAGE_RECORDS } from '../warehouse/vault-tables.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import type { RowsByTenant } from './slice-replace.ts';

/**
 * Practices withheld from population health (`research: false` in tenants.yml, recorded in the
 * manifest). Their research data is never written, and what an earlier run wrote is removed the
 * next time they are built: a practice that leaves the research programme leaves it on its next
 * run, without a `--full-refresh`. Two places hold it, and both are enforced per batch:
 *
 * - the vault (its token map and linkage records): vault.ts resolves only the taking practices'
 *   identities, so the withheld ones' records are removed and the persons they linked resolve again;
 * - the pseudonymized tenant-scoped tables: the slice is built for the taking practices and the
 *   withheld ones' slices are deleted (below). Published research reads nothing else of a
 *   practice's (scope checks), so it loses them on its next build.
 *
 * A pseudonymized tenant-scoped view or ephemeral model has no slice to withhold: compile refuses
 * one while any practice is withheld (model-checks.ts).
 */
export interface ResearchSplit {
  taking: string[];
  withheld: string[];
}

export function researchSplit(manifest: Manifest, tenants: readonly string[]): ResearchSplit {
  const out = new Set(manifest.research_withheld ?? []);
  return { taking: tenants.filter((t) => !out.has(t)), withheld: tenants.filter((t) => out.has(t)) };
}

/** A relation whose per-practice slices are research data: a pseudonymized tenant-scoped table. */
export function holdsResearchSlices(node: ManifestNode): node is ModelNode {
  return node.kind === 'model' && node.pseudonymized && node.scope === 'tenant' && (node.materialized === 'table' || node.materialized === 'incremental');
}

/** What withdrawSlices needs of the run's BuildContext (strategy.ts, which calls it). */
export interface WithdrawContext {
  adapter: Adapter;
  manifest: Manifest;
  metaSchema: string;
  tenantColumn: string;
  nodeTimeoutMs?: number;
}

/**
 * Removes the withheld practices' slices of `node`; their rows count as 0 (a slice now empty).
 * The records that would let a later build merge over what is gone are forgotten first (on
 * DuckDB the meta schema is another file than the research tables, so not in one transaction;
 * a crash in between costs one full rebuild, never a merge): these practices' versions of
 * `node`, so that one coming back is built in full; and, when it had rows, the whole-relation
 * versions of the global incremental models below it, which merge across practices and would
 * keep cells counted from the rows removed here.
 */
export async function withdrawSlices(ctx: WithdrawContext, node: ModelNode, withheld: readonly string[]): Promise<{ rows: RowsByTenant; removed: number }> {
  const rows: RowsByTenant = new Map(withheld.map((t) => [t, 0]));
  if (!(await ctx.adapter.describe(node.schema, node.identifier))) return { rows, removed: 0 };
  const rel = quoteRelation(node.schema, node.identifier);
  const slice = `${quoteIdent(ctx.tenantColumn)} = ANY($1::VARCHAR[])`;
  await forgetVersions(ctx.adapter, ctx.metaSchema, node, withheld);
  const had = await ctx.adapter.query(`SELECT 1 AS present FROM ${rel} WHERE ${slice} LIMIT 1`, [[...withheld]]);
  if (had.rows.length === 0) return { rows, removed: 0 };
  for (const below of globalIncrementalBelow(ctx.manifest, node)) await forgetVersions(ctx.adapter, ctx.metaSchema, below, [WHOLE_RELATION]);
  const { rowsChanged } = await ctx.adapter.transaction((s) => s.query(`DELETE FROM ${rel} WHERE ${slice}`, [[...withheld]]), { timeoutMs: ctx.nodeTimeoutMs });
  return { rows, removed: rowsChanged };
}

/**
 * Linkage moved some of these practices' records to another person token: an incremental research
 * slice merged into would keep the rows under the old token beside the new ones (one person
 * counted twice, under a date shift that is no longer theirs; red-team, 2026-12-07). Their
 * slices, and the global incremental models over them, are built in full next time.
 */
export async function rebuildSlicesInFull(ctx: WithdrawContext, practices: readonly string[]): Promise<void> {
  if (practices.length === 0) return;
  for (const node of Object.values(ctx.manifest.models).filter((n) => holdsResearchSlices(n) && n.materialized === 'incremental')) {
    await forgetVersions(ctx.adapter, ctx.metaSchema, node, practices);
    for (const below of globalIncrementalBelow(ctx.manifest, node)) await forgetVersions(ctx.adapter, ctx.metaSchema, below, [WHOLE_RELATION]);
  }
}

/** Models built once per run and merged into (incremental, not tenant-scoped) that read `node`, directly or not. */
function globalIncrementalBelow(manifest: Manifest, node: ManifestNode): ModelNode[] {
  const below = downstreamOf(compiledGraph(manifest), [node.name]);
  return Object.values(manifest.models).filter((m) => below.has(m.name) && m.scope !== 'tenant' && m.materialized === 'incremental');
}

/** The run's note on a node that withheld practices: `detail` says what became of their data. */
export function withheldNote(practices: number, detail: string): string {
  return `${practices} practice(s) withheld from research (tenants.yml research: false): ${detail}`;
}

export function removedDetail(removed: number): string {
  // A deleted row's bytes stay in the files until they are rewritten (purge-bytes.test.ts measures DuckDB's).
  return removed > 0
    ? `${removed} row(s) written by an earlier run removed (their bytes stay in the database's files until rewritten: tsform compact on DuckDB, VACUUM (FULL) on PostgreSQL)`
    : 'nothing written for them';
}

/**
 * `tsform privacy check`: rows of withheld practices still in the vault or a pseudonymized table
 * (written before the practice was withheld, and not yet removed by a run of it), per relation.
 */
export async function withheldRowsLeft(adapter: Adapter, manifest: Manifest, tenantColumn: string): Promise<{ relation: string; rows: number }[]> {
  const withheld = manifest.research_withheld ?? [];
  if (withheld.length === 0) return [];
  const vault = vaultNode(manifest);
  const relations = [
    ...Object.values(manifestNodes(manifest))
      .filter(holdsResearchSlices)
      .map((n) => ({ schema: n.schema, identifier: n.identifier, column: tenantColumn })),
    ...(vault
      ? [
          { schema: vault.schema, identifier: vault.identifier, column: tenantColumn },
          ...[VAULT_LINKAGE_RECORDS, VAULT_LINKAGE_KEYS].map((t) => ({ schema: vault.schema, identifier: t.name, column: 'tenant' })),
        ]
      : []),
  ];
  const out: { relation: string; rows: number }[] = [];
  for (const r of relations) {
    if (!(await adapter.describe(r.schema, r.identifier))) continue;
    const { rows } = await adapter.query(`SELECT count(*) AS n FROM ${quoteRelation(r.schema, r.identifier)} WHERE ${quoteIdent(r.column)} = ANY($1::VARCHAR[])`, [withheld]);
    const n = Number(rows[0]?.n ?? 0);
    if (n > 0) out.push({ relation: `${r.schema}.${r.identifier}`, rows: n });
  }
  return out;
}

/**
 * Rows of `table` by practice, for the practices tenants.yml no longer names (offboarded, not yet
 * purged): never built again, so nothing else withdraws their research slices. One grouped scan.
 */
export async function offboardedSlices(adapter: Adapter, manifest: Manifest, tenantColumn: string, table: ModelNode): Promise<{ practice: string; rows: number }[]> {
  if (!(await adapter.describe(table.schema, table.identifier))) return [];
  const t = quoteIdent(tenantColumn);
  const { rows } = await adapter.query(`SELECT ${t} AS practice, count(*) AS n FROM ${quoteRelation(table.schema, table.identifier)} WHERE NOT (${t} = ANY($1::VARCHAR[])) GROUP BY 1 ORDER BY 1`, [manifest.tenants]);
  return rows.map((r) => ({ practice: String(r.practice), rows: Number(r.n) }));
}

/** `tsform privacy check`: offboarded practices' rows left in the pseudonymized tables, per relation. */
export async function offboardedRowsLeft(adapter: Adapter, manifest: Manifest, tenantColumn: string): Promise<{ relation: string; rows: number; practices: string[] }[]> {
  const out: { relation: string; rows: number; practices: string[] }[] = [];
  for (const n of Object.values(manifestNodes(manifest)).filter(holdsResearchSlices)) {
    const left = await offboardedSlices(adapter, manifest, tenantColumn, n);
    if (left.length > 0) out.push({ relation: `${n.schema}.${n.identifier}`, rows: left.reduce((a, l) => a + l.rows, 0), practices: left.map((l) => l.practice) });
  }
  return out;
}
