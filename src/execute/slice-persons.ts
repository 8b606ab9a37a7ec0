import type { Session } from '../adapters/adapter.ts';
import type { ManifestNode } from '../artifacts/manifest.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';

/** The vault and the tenant column, for a tenant-scoped batch's check of whose tokens its rows hold. */
export interface OwnPersons {
  vault: ManifestNode;
  tenantColumn: string;
}

/**
 * Rows per column holding the vault token of a person who is not a patient of the row's own
 * practice. A practice's research slice is about its own persons: a per-person read of a global
 * research relation (`g.person_token = v.person_token`) brings in what the vault links to the
 * practice's own person, a cross join brings in every practice's persons (red-team, 2026-12-07: 4
 * of 5 slices held other practices' tokens), which a practice's withdrawal would not reach. The
 * compile check refuses such reads (model-checks.ts, person-rows.ts); this is its fail-closed
 * backstop on the rows, matching a token's exact text only. A
 * person linked across practices has one token and a vault row at each, so is each one's own.
 * `values`: the scan's unpivoted cells (row id, column position, text: leak-scan.ts).
 */
export async function otherPracticesPersons(s: Session, values: string, columns: readonly string[], own: OwnPersons): Promise<[string, number][]> {
  const tenantIndex = columns.findIndex((c) => c.toLowerCase() === own.tenantColumn.toLowerCase());
  if (tenantIndex < 0) return [];
  const vault = quoteRelation(own.vault.schema, own.vault.identifier);
  const tc = quoteIdent(own.tenantColumn);
  const { rows } = await s.query(
    `SELECT v.col, count(DISTINCT v.rid) AS n
       FROM ${quoteIdent(values)} AS v JOIN ${quoteIdent(values)} AS p ON p.rid = v.rid AND p.col = ${tenantIndex}
      WHERE v.t IN (SELECT person_token FROM ${vault})
        AND NOT EXISTS (SELECT 1 FROM ${vault} AS o WHERE CAST(o.${tc} AS VARCHAR) = p.t AND o.person_token = v.t)
      GROUP BY v.col`,
  );
  return rows.map((r) => [columns[Number(r.col)]!, Number(r.n)]);
}
