import { Codes, TsformError } from '../errors.ts';
import type { ResolvedSpec } from './capture-spec.ts';
import type { OltpReadSession } from './oltp-source.ts';
import type { SourceColumn } from './source-columns.ts';

/**
 * The `key:` of a captured table must identify a row of the OLTP table within its practice:
 * capture replaces raw's rows by (practice, key), so two live rows sharing a key leave one in
 * raw, and a row whose key is NULL matches nothing (red-team, 2026-12-07, finding 6: 4 rows,
 * raw held 1, no error). Checked once per table at set-up (prepareCapture, both modes): a primary
 * key or a valid unique index, neither partial nor on expressions, whose key columns are all
 * among the practice column and the key columns, and every key column NOT NULL. Else the table
 * fails with TSF424 naming it and its key; its values are never read.
 */
export async function checkCaptureKey(r: OltpReadSession, spec: ResolvedSpec, source: readonly SourceColumn[]): Promise<void> {
  const key = `(${spec.key.join(', ')})`;
  const byName = new Map(source.map((c) => [c.name, c]));
  const missing = spec.key.filter((k) => !byName.has(k));
  if (missing.length > 0) {
    throw new TsformError(Codes.captureKey, `capture ${spec.label}: key column "${missing[0]}" of key ${key} is not a column of the source table`);
  }
  const nullable = spec.key.filter((k) => byName.get(k)!.nullable);
  if (nullable.length > 0) {
    throw new TsformError(
      Codes.captureKey,
      `capture ${spec.label}: key ${key} allows NULL in column ${nullable.map((c) => `"${c}"`).join(', ')} of the OLTP table: a row with a NULL key cannot be captured. Make the column NOT NULL, or set key: in sources.yml to the table's primary key`,
    );
  }
  const { rows } = await r.query(
    `SELECT array_agg(a.attname::text ORDER BY k.n) AS cols
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class c ON c.oid = i.indrelid JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
       CROSS JOIN LATERAL generate_series(0, i.indnkeyatts - 1) AS k(n)
       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n]
      WHERE s.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
      GROUP BY i.indexrelid`,
    [spec.sourceSchema, spec.table],
  );
  const allowed = new Set([spec.tenantColumn, ...spec.key]);
  const covered = rows.some((row) => {
    const cols = row.cols as string[];
    return cols.length > 0 && cols.every((c) => allowed.has(c));
  });
  if (!covered) {
    throw new TsformError(
      Codes.captureKey,
      `capture ${spec.label}: key ${key} is not unique in the OLTP: no primary key or unique index of the table is on ${key} or (${[spec.tenantColumn, ...spec.key].join(', ')}) (or fewer of these columns), so rows sharing a key would replace each other in raw. Set key: in sources.yml to the table's primary key, or add a unique index`,
    );
  }
}
