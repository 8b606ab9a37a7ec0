/**
 * Row checksums of every relation in a DuckDB warehouse (and the research file beside it): the
 * evidence that a refactor left the demo's outputs as they were. Prints JSON, one entry per
 * relation: row count and an order-independent sum of row hashes. Values are never printed.
 *
 *   npx tsx scripts/relation-checksums.ts [target-dir]   (default target/)
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { quoteIdent } from '../src/sql/quote.ts';

const dir = process.argv[2] ?? 'target';
const out: Record<string, { rows: number; checksum: string }> = {};
for (const file of ['tsform.duckdb', 'research.duckdb']) {
  const path = join(dir, file);
  if (!existsSync(path)) continue;
  const db = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
  const con = await db.connect();
  const rels = (await con.runAndReadAll(
    `SELECT table_catalog, table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1, 2, 3`,
  )).getRowObjects();
  for (const r of rels) {
    const rel = [r.table_catalog, r.table_schema, r.table_name].map((x) => quoteIdent(String(x))).join('.');
    const row = (await con.runAndReadAll(`SELECT count(*)::BIGINT AS n, coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR AS h FROM ${rel} t`)).getRowObjects()[0]!;
    out[`${r.table_schema}.${r.table_name}`] = { rows: Number(row.n), checksum: String(row.h) };
  }
  con.closeSync();
}
console.log(JSON.stringify(out, null, 1));
