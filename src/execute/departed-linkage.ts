import type { Adapter } from '../adapters/adapter.ts';
import { manifestNodes, type Manifest, type ManifestNode } from '../artifacts/manifest.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { VAULT_LINKAGE_RECORDS } from '../warehouse/vault-tables.ts';
import { holdsResearchSlices, withdrawSlices, type WithdrawContext } from './research-withheld.ts';

/**
 * A practice that leaves research (`research: false`) or the platform (gone from tenants.yml)
 * must stop linking other practices' records, whichever practices the next run builds: a person
 * whose records at A and C were joined only through a record at B stays one person in A's and
 * C's research slices until the vault forgets B and both slices are rebuilt (red-team,
 * 2026-12-07: a run of every practice but B kept the link; a run of B alone split it in the vault
 * but left A's and C's slices sharing the old token, and privacy check passed).
 *
 * So every vault build forgets every departed practice's records (vault.ts), and before it does,
 * the research slices of the practices a departed record linked are removed (as a withheld
 * practice's are), until those practices are built again: only there can a link made through
 * the departed practice survive, and which of their rows carry it cannot be told by column.
 * Removing first is what fails closed: a crash after it leaves the vault as it was, and the
 * next vault build removes the same slices again.
 */

/** Practices the vault still holds records of that it may no longer use: withheld from research, or no longer in tenants.yml. */
export async function departedPractices(adapter: Adapter, manifest: Manifest, vault: ManifestNode, tenantColumn: string): Promise<string[]> {
  const withheld = manifest.research_withheld ?? [];
  const tables = [
    { identifier: vault.identifier, column: tenantColumn },
    { identifier: VAULT_LINKAGE_RECORDS.name, column: 'tenant' },
  ];
  const found = new Set<string>();
  for (const t of tables) {
    if (!(await adapter.describe(vault.schema, t.identifier))) continue;
    const c = quoteIdent(t.column);
    const { rows } = await adapter.query(
      `SELECT DISTINCT CAST(${c} AS VARCHAR) AS practice FROM ${quoteRelation(vault.schema, t.identifier)}
        WHERE ${c} = ANY($1::VARCHAR[]) OR NOT (${c} = ANY($2::VARCHAR[]))`,
      [[...withheld], [...manifest.tenants]],
    );
    for (const r of rows) found.add(String(r.practice));
  }
  return [...found].sort();
}

/**
 * Practices, other than the departed ones, holding a record of a person who has a record at a
 * departed practice and two or more records elsewhere (at two practices, or two records at one):
 * the persons whose linkage may have gone through the departed record. A person with one record
 * left links nothing.
 */
export async function practicesLinkedThrough(adapter: Adapter, vault: ManifestNode, tenantColumn: string, departed: readonly string[]): Promise<string[]> {
  if (departed.length === 0 || !(await adapter.describe(vault.schema, vault.identifier))) return [];
  const rel = quoteRelation(vault.schema, vault.identifier);
  const tc = quoteIdent(tenantColumn);
  const { rows } = await adapter.query(
    `WITH spanning AS (
       SELECT person_token FROM ${rel}
        GROUP BY person_token
       HAVING bool_or(${tc} = ANY($1::VARCHAR[])) AND sum(CASE WHEN ${tc} = ANY($1::VARCHAR[]) THEN 0 ELSE 1 END) >= 2)
     SELECT DISTINCT CAST(v.${tc} AS VARCHAR) AS practice FROM ${rel} v JOIN spanning USING (person_token)
      WHERE NOT (v.${tc} = ANY($1::VARCHAR[]))
      ORDER BY 1`,
    [[...departed]],
  );
  return rows.map((r) => String(r.practice));
}

/** Removes those practices' slices of every research table; returns the run's note, if anything was removed. */
export async function withdrawLinkedSlices(ctx: WithdrawContext, practices: readonly string[]): Promise<string | undefined> {
  if (practices.length === 0) return undefined;
  let removed = 0;
  for (const table of Object.values(manifestNodes(ctx.manifest)).filter(holdsResearchSlices)) removed += (await withdrawSlices(ctx, table, practices)).removed;
  return (
    `${practices.length} practice(s) held persons linked through a practice withheld from research or gone from tenants.yml: ` +
    `${removed} row(s) of their research slices removed until they are built again`
  );
}
