import type { Adapter } from '../../src/adapters/adapter.ts';
import { quoteIdent, quoteRelation } from '../../src/sql/quote.ts';
import type { MonoStatement } from './fleet-mono.ts';

/**
 * bench:nightly's baseline on either engine, through the Adapter interface: each tenant-scoped
 * SQL model as one `CREATE TABLE … AS <compiled SQL>` over every practice (the tenant filter
 * replaced by TRUE, fleet-mono.ts), in DAG order, in its own copy of the warehouse. And the
 * per-model row count + order-independent checksum that proves both sides built the same rows.
 */

export async function runMonolithicOn(adapter: Adapter, statements: readonly MonoStatement[]): Promise<{ seconds: number; perModel: Record<string, number> }> {
  const t0 = performance.now();
  const perModel: Record<string, number> = {};
  for (const st of statements) {
    const s0 = performance.now();
    const rel = quoteRelation(st.schema, st.identifier);
    if (adapter.kind === 'duckdb') {
      await adapter.query(`CREATE OR REPLACE TABLE ${rel} AS\n${st.sql}`);
    } else {
      // One statement per message on PostgreSQL (the adapter's extended protocol): drop, then create, in one transaction.
      await adapter.transaction(async (s) => {
        // CASCADE: the demo's view practice_patient_roster depends on stg_patients (not rebuilt here).
        await s.query(`DROP TABLE IF EXISTS ${rel} CASCADE`);
        await s.query(`CREATE TABLE ${rel} AS\n${st.sql}`);
      });
    }
    perModel[st.id] = Math.round(performance.now() - s0) / 1000;
  }
  return { seconds: (performance.now() - t0) / 1000, perModel };
}

export async function dropModelTables(adapter: Adapter, statements: readonly MonoStatement[]): Promise<void> {
  // PostgreSQL tracks views on these tables (the demo's practice_patient_roster): CASCADE drops them too.
  const cascade = adapter.kind === 'postgres' ? ' CASCADE' : '';
  for (const st of [...statements].reverse()) {
    const drop = `DROP TABLE IF EXISTS ${quoteRelation(st.schema, st.identifier)}${cascade}`;
    // A partitioned parent's DROP locks every partition; once, at 1,000 practices, it met a lock
    // held the other way round and PostgreSQL chose it as the deadlock victim (40P01): try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await adapter.query(drop);
        break;
      } catch (err) {
        if (attempt >= 5 || (err as { code?: unknown }).code !== '40P01') throw err;
        await new Promise((r) => setTimeout(r, 1000 * attempt));
      }
    }
  }
}

export interface ModelChecksum {
  rows: number;
  checksum: string;
}

/** Row count and an order-independent checksum over the given columns (sum of a 60-bit row hash). */
export async function checksumOf(adapter: Adapter, schema: string, table: string, columns: readonly string[], without: readonly string[] = []): Promise<ModelChecksum> {
  const cols = columns.map(quoteIdent).join(', ');
  const rel = `${quoteRelation(schema, table)} WHERE NOT (${quoteIdent('practice_id')} = ANY($1::VARCHAR[]))`;
  const sql =
    adapter.kind === 'duckdb'
      ? `SELECT count(*)::BIGINT AS n, coalesce(sum(hash(${cols}) >> 4), 0)::VARCHAR AS s FROM ${rel}`
      : `SELECT count(*)::BIGINT AS n, coalesce(sum(('x' || substr(md5(ROW(${cols})::text), 1, 15))::bit(60)::bigint), 0)::text AS s FROM ${rel}`;
  const { rows } = await adapter.query(sql, [[...without]]);
  return { rows: Number(rows[0]!.n), checksum: String(rows[0]!.s) };
}

export async function columnsOf(adapter: Adapter, schema: string, table: string): Promise<string[]> {
  return (await adapter.query(`SELECT * FROM ${quoteRelation(schema, table)} LIMIT 0`)).columns;
}

/**
 * Compares every model of `statements` between the tsform warehouse and the monolithic one:
 * same columns, rows and checksum. Returns the figures; throws naming every model that differs.
 */
export async function verifySameRows(
  tsform: Adapter,
  mono: Adapter,
  statements: readonly MonoStatement[],
  /** Per model id, practices left out on both sides (slices tsform refused to write). */
  refused: ReadonlyMap<string, readonly string[]> = new Map(),
): Promise<Record<string, ModelChecksum>> {
  const out: Record<string, ModelChecksum> = {};
  const problems: string[] = [];
  for (const st of statements) {
    const colsTs = await columnsOf(tsform, st.schema, st.identifier);
    const colsMono = await columnsOf(mono, st.schema, st.identifier);
    // tsform may order columns as the table was first created; compare the sets, checksum in one order.
    if ([...colsTs].sort().join(',') !== [...colsMono].sort().join(',')) {
      problems.push(`${st.id}: columns differ (tsform ${colsTs.join(', ')}; monolithic ${colsMono.join(', ')})`);
      continue;
    }
    const without = refused.get(st.id) ?? [];
    const a = await checksumOf(tsform, st.schema, st.identifier, colsMono, without);
    const b = await checksumOf(mono, st.schema, st.identifier, colsMono, without);
    if (a.rows !== b.rows || a.checksum !== b.checksum) problems.push(`${st.id}: tsform ${a.rows} rows (${a.checksum}) vs monolithic ${b.rows} rows (${b.checksum})`);
    out[st.id] = a;
  }
  if (problems.length > 0) throw new Error(`tsform and monolithic rows differ:\n  ${problems.join('\n  ')}`);
  return out;
}
