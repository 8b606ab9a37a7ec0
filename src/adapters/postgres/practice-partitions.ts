import type { PracticePartitioning, QueryResult, SqlParam } from '../adapter.ts';
import { partitionName } from '../../sql/partition-names.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';

/**
 * A tenant-scoped table partitioned by practice (target option `partition_by_practice`): LIST
 * partitions for the practices named (the largest), and a DEFAULT partition HASH-subpartitioned
 * for everyone else. Generated SQL carries `practice_id = ANY($1)` on every read and write, so
 * the planner prunes to the bound practices' partitions (measured: docs/notes/cdc-and-queues.md, "Subplans
 * Removed" with the RLS policy in place).
 *
 * Partitions are never granted to practice roles, and carry row-level security with no policy:
 * read directly, they return nothing to anyone but a superuser. Through the parent, the parent's
 * policies apply (PostgreSQL applies the policies of the table a query names).
 */

type Run = (sql: string, params: readonly SqlParam[]) => Promise<QueryResult>;

export async function createPartitionedTable(
  run: Run,
  layout: PracticePartitioning,
  schema: string,
  name: string,
  likeTemp: string,
  tenantColumn: string,
): Promise<void> {
  const parent = quoteRelation(schema, name);
  const found = await run(`SELECT to_regclass($1) IS NOT NULL AS present`, [parent]);
  if (found.rows[0]?.present === true) return;
  // Another batch of the model creating it meanwhile makes this fail with 42P07, a write
  // conflict that is retried (pg-errors.ts); the retry finds the table.
  await run(`CREATE TABLE ${parent} (LIKE pg_temp.${quoteIdent(likeTemp)}) PARTITION BY LIST (${quoteIdent(tenantColumn)})`, []);
  const partitions: string[] = [];
  for (const [i, practice] of layout.list.entries()) {
    const part = quoteRelation(schema, partitionName(name, `__p${i + 1}`));
    // A partition bound cannot be a parameter. The practice id travels bound into format(), and
    // PostgreSQL's own quote_literal (%L) writes the bound; tsform never splices it into SQL text.
    const ddl = await run(`SELECT format('CREATE TABLE %s PARTITION OF %s FOR VALUES IN (%L)', $1::text, $2::text, $3::text) AS ddl`, [part, parent, practice]);
    await run(String(ddl.rows[0]!.ddl), []);
    partitions.push(part);
  }
  const rest = quoteRelation(schema, partitionName(name, '__rest'));
  await run(`CREATE TABLE ${rest} PARTITION OF ${parent} DEFAULT PARTITION BY HASH (${quoteIdent(tenantColumn)})`, []);
  partitions.push(rest);
  for (let k = 0; k < layout.hashPartitions; k++) {
    const part = quoteRelation(schema, partitionName(name, `__h${k}`));
    await run(`CREATE TABLE ${part} PARTITION OF ${rest} FOR VALUES WITH (MODULUS ${layout.hashPartitions}, REMAINDER ${k})`, []);
    partitions.push(part);
  }
  for (const part of partitions) {
    await run(`ALTER TABLE ${part} ENABLE ROW LEVEL SECURITY`, []);
    await run(`ALTER TABLE ${part} FORCE ROW LEVEL SECURITY`, []);
  }
}

