import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent, quoteRelation } from '../../src/sql/quote.ts';

/**
 * Compares relations between the tsform warehouse and the monolithic one: same columns, same
 * row count, and the same order-independent checksums (sum and xor of a hash of every column of
 * each row). Returns the per-relation figures; throws when any differ.
 */

export interface RelationCheck {
  relation: string;
  rows: number;
  checksum: string;
}

export async function compareWarehouses(
  tsformPath: string,
  monoPath: string,
  relations: readonly { schema: string; name: string }[],
): Promise<RelationCheck[]> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const conn = await instance.connect();
  try {
    await conn.run(`ATTACH '${tsformPath.replaceAll("'", "''")}' AS ts (READ_ONLY)`);
    await conn.run(`ATTACH '${monoPath.replaceAll("'", "''")}' AS mono (READ_ONLY)`);
    const out: RelationCheck[] = [];
    const problems: string[] = [];
    for (const r of relations) {
      const name = `${r.schema}.${r.name}`;
      const colsTs = await columns(conn, 'ts', r.schema, r.name);
      const colsMono = await columns(conn, 'mono', r.schema, r.name);
      if (colsTs.length === 0 || colsTs.join(',') !== colsMono.join(',')) {
        problems.push(`${name}: columns differ (tsform: ${colsTs.join(', ') || 'missing'}; monolithic: ${colsMono.join(', ') || 'missing'})`);
        continue;
      }
      const h = `hash(${colsTs.map(quoteIdent).join(', ')})`;
      const sum = async (db: string) => {
        const reader = await conn.runAndReadAll(
          `SELECT count(*)::BIGINT AS n, sum(${h}::HUGEINT)::VARCHAR AS s, bit_xor(${h})::VARCHAR AS x FROM ${quoteIdent(db)}.${quoteRelation(r.schema, r.name)}`,
        );
        const row = reader.getRowObjectsJson()[0]!;
        return { n: Number(row.n), sum: `${row.s}/${row.x}` };
      };
      const a = await sum('ts');
      const b = await sum('mono');
      if (a.n !== b.n || a.sum !== b.sum) problems.push(`${name}: tsform ${a.n} rows (checksum ${a.sum}) vs monolithic ${b.n} rows (checksum ${b.sum})`);
      out.push({ relation: name, rows: a.n, checksum: a.sum });
    }
    if (problems.length > 0) throw new Error(`tsform and monolithic results differ:\n  ${problems.join('\n  ')}`);
    return out;
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

async function columns(conn: DuckDBConnection, db: string, schema: string, table: string): Promise<string[]> {
  const reader = await conn.runAndReadAll(
    `SELECT column_name FROM information_schema.columns WHERE table_catalog = $1 AND table_schema = $2 AND table_name = $3 ORDER BY ordinal_position`,
    [db, schema, table],
  );
  return reader.getRowObjectsJson().map((r) => String(r.column_name));
}
