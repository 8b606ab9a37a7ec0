import type { Adapter } from '../../src/adapters/adapter.ts';
import { quoteIdent, quoteRelation } from '../../src/sql/quote.ts';

/** Per relation, `practice|md5(row)` → how many rows have it. */
export type Fingerprints = Map<string, Map<string, string>>;

/**
 * Row fingerprints of every relation tsform wrote (raw and every model; not tsform's own tables
 * or the vault), per relation: the multiset of md5(row) with the row's practice. The same SQL on
 * DuckDB and PostgreSQL. Values never leave this function: a difference is reported as counts
 * and practice ids.
 */
export async function relationFingerprints(db: Adapter): Promise<Fingerprints> {
  const { rows } = await db.query(
    `SELECT table_schema AS s, table_name AS t, bool_or(column_name = 'practice_id') AS tenant FROM information_schema.columns
      WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'tsform_meta') AND table_schema NOT LIKE 'pg\\_%' ESCAPE '\\' AND table_schema NOT LIKE 'tsform\\_vault%' ESCAPE '\\'
      GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  const out: Fingerprints = new Map();
  for (const r of rows) {
    const rel = quoteRelation(String(r.s), String(r.t));
    const practice = r.tenant === true ? `CAST(t.${quoteIdent('practice_id')} AS text)` : `''`;
    const fp = await db.query(`SELECT ${practice} AS p, md5(CAST(t AS text)) AS h, count(*) AS n FROM ${rel} AS t GROUP BY 1, 2`);
    out.set(`${String(r.s)}.${String(r.t)}`, new Map(fp.rows.map((x) => [`${String(x.p)}|${String(x.h)}`, String(x.n)])));
  }
  return out;
}

/** Per relation: rows only one side has (counts) and the practices they belong to. */
export function fingerprintDifferences(got: Fingerprints, want: Fingerprints): string[] {
  const out: string[] = [];
  for (const rel of new Set([...got.keys(), ...want.keys()])) {
    const a = got.get(rel);
    const b = want.get(rel);
    if (!a || !b) {
      out.push(`${rel}: only in the ${a ? 'crashed' : 'fresh'} warehouse`);
      continue;
    }
    let extra = 0;
    let missing = 0;
    const practices = new Set<string>();
    for (const k of new Set([...a.keys(), ...b.keys()])) {
      const d = Number(a.get(k) ?? 0) - Number(b.get(k) ?? 0);
      if (d === 0) continue;
      if (d > 0) extra += d;
      else missing -= d;
      practices.add(k.split('|')[0]!);
    }
    if (extra + missing > 0) out.push(`${rel}: ${extra} extra, ${missing} missing (practices ${[...practices].sort().join(', ')})`);
  }
  return out;
}
