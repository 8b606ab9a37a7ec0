import type { Adapter } from '../adapters/adapter.ts';
import type { Queryable } from '../warehouse/table-def.ts';
import { manifestNodes, vaultNode, type Manifest, type ManifestNode, type ModelNode } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import { compiledGraph, upstreamOf } from '../graph/dag.ts';
import { quoteRelation } from '../sql/quote.ts';
import { relationKey } from '../warehouse/deletion-epochs.ts';
import { WITHHELD_AT_BUILD } from '../warehouse/meta-schema.ts';
import { forgetVersions, WHOLE_RELATION } from '../warehouse/relation-versions.ts';
import { departedPractices, practicesLinkedThrough, withdrawLinkedSlices } from './departed-linkage.ts';
import { holdsResearchSlices, offboardedSlices, withdrawSlices, withheldNote, type WithdrawContext } from './research-withheld.ts';

/**
 * A stored global relation built from research slices (a published aggregate, a global table over
 * pseudonymized ones) counts every practice whose rows were in those slices when it was built. A
 * practice withheld since then is still in it, and in every relation built from it, until it is
 * built again. So tsform records, with each such relation, which practices were withheld when it
 * was last built (`tsform_meta.withheld_at_build`), and before it builds one:
 *
 * - empties the withheld practices' slices of every research table it is built from (whether or
 *   not those practices are in the run: `tsform run --select <published model>` alone must not
 *   publish them again);
 * - refuses (TSF414) while a stored global relation it reads was built before a practice now
 *   withheld was, naming it and the command that rebuilds it: what it holds cannot be told apart
 *   by practice, so it is rebuilt, never read;
 * - builds itself in full when it is incremental and was built before, for the same reason.
 *
 * The record is removed before the build and written after it commits (on DuckDB the meta schema
 * is another file): a crash in between leaves no record, read as "built before any practice was
 * withheld", which costs a rebuild and never lets a relation through.
 */

/** A stored (table or incremental) model built once per run from research slices, directly or not. */
export function isGlobalResearchRelation(manifest: Manifest, node: ManifestNode): node is ModelNode {
  return node.kind === 'model' && node.scope !== 'tenant' && (node.materialized === 'table' || node.materialized === 'incremental') && upstreamNodes(manifest, node).some(holdsResearchSlices);
}

function upstreamNodes(manifest: Manifest, node: ManifestNode): ManifestNode[] {
  const nodes = manifestNodes(manifest);
  return [...upstreamOf(compiledGraph(manifest), [node.name])].map((id) => nodes[id]!);
}

/** Practices withheld now that `relation`'s last build did not withhold (all of them when it has no record). */
async function missingFrom(q: Queryable, metaSchema: string, relations: readonly ModelNode[], withheld: readonly string[]): Promise<Map<ModelNode, string[]>> {
  const out = new Map<ModelNode, string[]>();
  if (relations.length === 0 || withheld.length === 0) return out;
  const { rows } = await q.query(`SELECT relation, withheld_json FROM ${quoteRelation(metaSchema, WITHHELD_AT_BUILD.name)} WHERE relation = ANY($1::VARCHAR[])`, [
    relations.map(relationKey),
  ]);
  const recorded = new Map(rows.map((r) => [String(r.relation), new Set(JSON.parse(String(r.withheld_json)) as string[])]));
  for (const r of relations) {
    const had = recorded.get(relationKey(r)) ?? new Set<string>();
    const missing = withheld.filter((t) => !had.has(t));
    if (missing.length > 0) out.set(r, missing);
  }
  return out;
}

/** Before a whole build of `node`; returns its notes. Throws TSF414 when it reads a relation built before a withdrawal. */
export async function beforeGlobalResearchBuild(ctx: WithdrawContext, node: ModelNode): Promise<string[]> {
  const withheld = ctx.manifest.research_withheld ?? [];
  const builtBefore = (await missingFrom(ctx.adapter, ctx.metaSchema, [node], withheld)).size > 0;
  await ctx.adapter.query(`DELETE FROM ${quoteRelation(ctx.metaSchema, WITHHELD_AT_BUILD.name)} WHERE relation = $1`, [relationKey(node)]);
  const upstream = upstreamNodes(ctx.manifest, node);
  const notes = await withdrawOffboarded(ctx, upstream.filter(holdsResearchSlices));
  const linked = await withdrawLinkedThroughDeparted(ctx);
  if (linked) notes.push(linked);
  if (withheld.length === 0) return notes;
  for (const slices of upstream.filter(holdsResearchSlices)) {
    const { removed } = await withdrawSlices(ctx, slices, withheld);
    if (removed > 0) notes.push(withheldNote(withheld.length, `${removed} row(s) of theirs removed from ${relationKey(slices)} before this build`));
  }
  const stored = upstream.filter((n): n is ModelNode => isGlobalResearchRelation(ctx.manifest, n));
  const stale = await missingFrom(ctx.adapter, ctx.metaSchema, stored, withheld);
  if (stale.size > 0) {
    const [first] = [...stale.keys()];
    throw new TsformError(
      Codes.privacyGate,
      `${node.name} reads ${[...stale].map(([r, practices]) => `'${r.name}', built before practice(s) ${practices.join(', ')} were withheld from research (tenants.yml research: false)`).join('; ')}: ` +
        `what it holds may count them; nothing was written. Build it first: tsform run --select ${first!.name}+`,
    );
  }
  if (builtBefore && node.materialized === 'incremental') await forgetVersions(ctx.adapter, ctx.metaSchema, node, [WHOLE_RELATION]);
  return notes;
}

/**
 * A practice removed from tenants.yml (offboarded) is never built again, so nothing withdrew its
 * research slices, and until `tsform purge` every published build counted it. Its slices of the
 * research tables a global build reads are removed first, as a withheld practice's are (coming
 * back, it is built in full).
 */
async function withdrawOffboarded(ctx: WithdrawContext, tables: readonly ModelNode[]): Promise<string[]> {
  const notes: string[] = [];
  for (const table of tables) {
    const gone = (await offboardedSlices(ctx.adapter, ctx.manifest, ctx.tenantColumn, table)).map((s) => s.practice);
    if (gone.length === 0) continue;
    const { removed } = await withdrawSlices(ctx, table, gone);
    notes.push(`${gone.length} practice(s) no longer in tenants.yml: ${removed} row(s) of theirs removed from ${relationKey(table)} before this build (tsform purge --tenant removes the rest)`);
  }
  return notes;
}

/**
 * While the vault still holds records of a practice withheld or gone from tenants.yml (the vault
 * has not run since), the slices of the persons it linked may carry the link: they go before a
 * published build reads them, as the vault's own build removes them (departed-linkage.ts). A
 * run of only the research models built them from that vault and published the link (red-team,
 * 2026-12-07, privacy check passing).
 */
async function withdrawLinkedThroughDeparted(ctx: WithdrawContext): Promise<string | undefined> {
  const vault = vaultNode(ctx.manifest);
  if (!vault) return undefined;
  const departed = await departedPractices(ctx.adapter, ctx.manifest, vault, ctx.tenantColumn);
  const note = await withdrawLinkedSlices(ctx, await practicesLinkedThrough(ctx.adapter, vault, ctx.tenantColumn, departed));
  return note && `${note}; the vault forgets the departed practices' records at its next build`;
}

/** After a whole build of `node` committed: it holds nothing of the practices withheld now. */
export async function afterGlobalResearchBuild(ctx: WithdrawContext, node: ModelNode): Promise<void> {
  await ctx.adapter.query(
    `INSERT INTO ${quoteRelation(ctx.metaSchema, WITHHELD_AT_BUILD.name)} (relation, withheld_json) VALUES ($1, $2) ON CONFLICT (relation) DO UPDATE SET withheld_json = excluded.withheld_json`,
    [relationKey(node), JSON.stringify([...(ctx.manifest.research_withheld ?? [])].sort())],
  );
}

/** `tsform privacy check`: stored global research relations built before a practice now withheld was. */
export async function builtBeforeWithdrawal(q: Pick<Adapter, 'query' | 'describe'>, manifest: Manifest, metaSchema: string): Promise<{ model: string; relation: string; practices: string[] }[]> {
  const withheld = manifest.research_withheld ?? [];
  if (withheld.length === 0) return [];
  const present: ModelNode[] = [];
  for (const n of Object.values(manifest.models)) if (isGlobalResearchRelation(manifest, n) && (await q.describe(n.schema, n.identifier))) present.push(n);
  // A warehouse no run of this tsform has migrated has no records: every such relation predates the withdrawal.
  const recorded = await q.describe(metaSchema, WITHHELD_AT_BUILD.name);
  const stale = recorded ? await missingFrom(q, metaSchema, present, withheld) : new Map(present.map((n) => [n, [...withheld]]));
  return [...stale].map(([n, practices]) => ({ model: n.name, relation: relationKey(n), practices }));
}
