import type { Adapter } from '../adapters/adapter.ts';
import type { ManifestTest } from '../artifacts/manifest.ts';

/**
 * Runs one data test for the given practices. Returns failure counts per practice (`null` for
 * a relation without practices); values of failing rows are never fetched.
 */
export async function runDataTest(adapter: Adapter, test: ManifestTest, tenants: readonly string[] | undefined): Promise<Map<string | null, number>> {
  const params = test.scope === 'tenant' ? [[...(tenants ?? [])]] : [];
  // Wrapped again at execution (compile already wraps it): inside FROM ( ... ) the engine's own
  // parser accepts only a query, so a test reaching here as COPY, GRANT or SET is a syntax error,
  // and query() sends it as one statement, so `...); grant ...` is refused (TSF416).
  const { rows } = await adapter.query(`SELECT tenant, failures FROM (\n${test.sql}\n) AS tsf_test`, params);
  const out = new Map<string | null, number>();
  for (const r of rows) {
    const n = Number(r.failures ?? 0);
    if (n > 0) out.set(r.tenant === null || r.tenant === undefined ? null : String(r.tenant), n);
  }
  return out;
}
