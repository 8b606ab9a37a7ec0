import type { Adapter } from '../adapters/adapter.ts';
import { manifestNodes, type Manifest, type ManifestNode } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import { isGlobalResearchRelation } from '../execute/research-builds.ts';
import { holdsResearchSlices } from '../execute/research-withheld.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';

/**
 * `--defer` reads what the selection does not build from a production state: a manifest and a
 * database published by an earlier run. Research data read that way is as old as that run: a
 * practice withheld from research since (or gone from tenants.yml) is still in its pseudonymized
 * slices, and the persons it linked are still linked there, while the local withdrawal (which
 * empties slices before a published build) reaches only the local warehouse (red-team,
 * 2026-12-07: a deferred published build counted a withheld practice again, recorded as clean).
 * So a deferred read of research data is refused when the state predates a departure, by its
 * manifest and by the rows it holds (a database newer or older than its manifest).
 */

/** The nodes `read` from production that hold research data: pseudonymized slices, the vault, stored global relations built from them. */
function deferredResearch(manifest: Manifest, read: ReadonlySet<string>): ManifestNode[] {
  const nodes = manifestNodes(manifest);
  return [...read]
    .map((id) => nodes[id])
    .filter((n): n is ManifestNode => n !== undefined && (holdsResearchSlices(n) || n.kind === 'vault' || isGlobalResearchRelation(manifest, n)));
}

/** Practices out of research now (withheld, or gone from tenants.yml) that were in it when `production` was compiled. */
function departedSince(current: Manifest, production: Manifest): string[] {
  const withheldNow = new Set(current.research_withheld ?? []);
  const listedNow = new Set(current.tenants);
  const withheldThen = new Set(production.research_withheld ?? []);
  return production.tenants.filter((t) => !withheldThen.has(t) && (withheldNow.has(t) || !listedNow.has(t))).sort();
}

function refusal(nodes: readonly ManifestNode[], practices: readonly string[], evidence: string): TsformError {
  return new TsformError(
    Codes.privacyGate,
    `--defer would read research data from production (${nodes.map((n) => n.name).join(', ')}), ${evidence} practice(s) ${practices.join(', ')}, ` +
      `withheld from research or gone from tenants.yml since: their rows, and the persons they linked, are in it. Nothing was read. ` +
      `Use a state published after the withdrawal, or select these models to build them here`,
  );
}

/** Before anything is opened: the state's manifest was compiled while a practice now out of research was in it. */
export function refuseResearchFromBeforeDeparture(current: Manifest, production: Manifest, read: ReadonlySet<string>): void {
  const nodes = deferredResearch(current, read);
  if (nodes.length === 0) return;
  const departed = departedSince(current, production);
  if (departed.length > 0) throw refusal(nodes, departed, 'whose manifest was compiled with');
}

/** With production attached: its pseudonymized slices and vault hold no row of a practice out of research now. */
export async function refuseDeferredDepartedRows(adapter: Adapter, current: Manifest, read: ReadonlySet<string>, catalog: string, tenantColumn: string): Promise<void> {
  const nodes = deferredResearch(current, read).filter((n) => n.kind === 'vault' || holdsResearchSlices(n));
  if (nodes.length === 0) return;
  const tc = quoteIdent(tenantColumn);
  const found = new Set<string>();
  for (const n of nodes) {
    // Not in production's database (the vault's own file): a build reading it fails on its own.
    const present = await adapter.query(`SELECT 1 AS present FROM information_schema.tables WHERE table_catalog = $1 AND table_schema = $2 AND table_name = $3`, [catalog, n.schema, n.identifier]);
    if (present.rows.length === 0) continue;
    const rel = `${quoteIdent(catalog)}.${quoteRelation(n.schema, n.identifier)}`;
    const { rows } = await adapter.query(
      `SELECT DISTINCT CAST(${tc} AS VARCHAR) AS practice FROM ${rel} WHERE ${tc} = ANY($1::VARCHAR[]) OR NOT (${tc} = ANY($2::VARCHAR[]))`,
      [[...(current.research_withheld ?? [])], [...current.tenants]],
    );
    for (const r of rows) found.add(String(r.practice));
  }
  if (found.size > 0) throw refusal(nodes, [...found].sort(), 'whose database holds rows of');
}
