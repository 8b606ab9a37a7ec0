import type { Adapter, Session } from '../../adapters/adapter.ts';
import { compareLsn, lsnSortKey } from '../../adapters/logical-replication.ts';
import { LOGICAL_QUEUE, LOGICAL_SLOTS } from '../../warehouse/meta-schema.ts';
import { quoteRelation } from '../../sql/quote.ts';
import type { QueuedChange } from './route-changes.ts';

/** The queue's columns in table order (the appender fills by position). */
const QUEUE_COLUMNS = Object.keys(LOGICAL_QUEUE.columns);

/** The warehouse's record of one slot: the commit end LSN the queue holds everything up to, and the tables copied. */
export interface SlotRecord {
  lsn: string;
  tables: string[];
}

export async function readSlotRecord(wh: Adapter | Session, metaSchema: string, slot: string): Promise<SlotRecord | undefined> {
  const { rows } = await wh.query(`SELECT lsn, tables_json FROM ${quoteRelation(metaSchema, LOGICAL_SLOTS.name)} WHERE slot = $1`, [slot]);
  const r = rows[0];
  return r ? { lsn: String(r.lsn), tables: JSON.parse(String(r.tables_json)) as string[] } : undefined;
}

export async function writeSlotRecord(s: Session, metaSchema: string, slot: string, record: SlotRecord): Promise<void> {
  const rel = quoteRelation(metaSchema, LOGICAL_SLOTS.name);
  await s.query(`DELETE FROM ${rel} WHERE slot = $1`, [slot]);
  await s.query(`INSERT INTO ${rel} (slot, lsn, tables_json, updated_at) VALUES ($1, $2, $3, now())`, [slot, record.lsn, JSON.stringify(record.tables)]);
}

/**
 * Queue rows and the slot's new position in the caller's transaction: they commit together, so
 * after a crash the stored LSN says exactly which source transactions are in the queue. Changes
 * of source transactions at or before the stored LSN are in the queue already and are left out
 * (the same batch committed twice: a retry after a COMMIT that succeeded, a second writer), and
 * the stored LSN never moves back. Returns the changes written.
 */
export async function enqueue(s: Session, metaSchema: string, slot: string, changes: readonly QueuedChange[], lsn: string): Promise<number> {
  const rel = quoteRelation(metaSchema, LOGICAL_SLOTS.name);
  // The slot's row first (PostgreSQL: a row lock, so a concurrent writer reads what this one
  // commits; DuckDB: a write conflict, retried), then the position it holds.
  await s.query(`UPDATE ${rel} SET updated_at = now() WHERE slot = $1`, [slot]);
  const stored = (await readSlotRecord(s, metaSchema, slot))?.lsn;
  const storedKey = stored === undefined ? undefined : lsnSortKey(stored);
  const fresh = storedKey === undefined ? changes : changes.filter((c) => c.lsn > storedKey);
  if (fresh.length > 0) {
    // The engine's bulk path straight into the queue (DuckDB's appender, PostgreSQL's COPY, both
    // parse seq's text): a staging table and an INSERT … SELECT cost 2.5× the CPU, and a bound
    // INSERT of 500 rows at a time ran at ~2,000 changes/s on DuckDB.
    await s.insertText(
      metaSchema,
      LOGICAL_QUEUE.name,
      QUEUE_COLUMNS,
      fresh.map((c) => [c.sourceTable, c.tenant, c.lsn, String(c.seq), c.op, JSON.stringify(c.key), c.row ? JSON.stringify(c.row) : null]),
    );
  }
  if (stored === undefined || compareLsn(lsn, stored) > 0) await s.query(`UPDATE ${rel} SET lsn = $2, updated_at = now() WHERE slot = $1`, [slot, lsn]);
  return fresh.length;
}

/** Practices with queued changes per table (what an apply pass has to visit). */
export async function queuedPractices(wh: Adapter, metaSchema: string): Promise<Map<string, Set<string>>> {
  const { rows } = await wh.query(`SELECT DISTINCT source_table, tenant FROM ${quoteRelation(metaSchema, LOGICAL_QUEUE.name)}`);
  const out = new Map<string, Set<string>>();
  for (const r of rows) {
    const t = String(r.source_table);
    out.set(t, (out.get(t) ?? new Set()).add(String(r.tenant)));
  }
  return out;
}

/** Queued changes of one table per practice, and the highest commit LSN sort key among them. */
export async function queuedCounts(wh: Adapter, metaSchema: string, table: string): Promise<{ counts: Map<string, number>; upTo: string }> {
  const { rows } = await wh.query(`SELECT tenant, count(*) AS n, max(lsn) AS lsn FROM ${quoteRelation(metaSchema, LOGICAL_QUEUE.name)} WHERE source_table = $1 GROUP BY tenant`, [table]);
  let upTo = '';
  const counts = new Map<string, number>();
  for (const r of rows) {
    counts.set(String(r.tenant), Number(r.n));
    if (String(r.lsn) > upTo) upTo = String(r.lsn);
  }
  return { counts, upTo };
}
