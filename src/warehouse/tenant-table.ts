import type { Session } from '../adapters/adapter.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';

/**
 * Creates a tenant-scoped table with the columns of temp table `shapeTemp` when it is missing:
 * partitioned by practice where the target lays tenant-scoped tables out so (a PostgreSQL
 * target's `partition_by_practice`, Session.createPartitionedLike), plain otherwise. The one
 * place that choice is made, for model slices, captured raw tables and landing tables alike.
 */
export async function createTenantTable(s: Session, schema: string, table: string, shapeTemp: string, tenantColumn: string): Promise<void> {
  if (s.createPartitionedLike) {
    await s.createPartitionedLike(schema, table, shapeTemp, tenantColumn);
    return;
  }
  // IF NOT EXISTS: another batch or capture of the same relation may have created it since the caller looked.
  await s.query(`CREATE TABLE IF NOT EXISTS ${quoteRelation(schema, table)} AS SELECT * FROM ${quoteIdent(shapeTemp)} LIMIT 0`);
}
