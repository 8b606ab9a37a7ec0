import type { Adapter, Session } from '../../adapters/adapter.ts';
import { insertRows, LOGICAL_QUEUE, LOGICAL_SLOTS } from '../../execute/meta-schema.ts';
import { quoteRelation } from '../../sql/quote.ts';
import type { QueuedChange } from './route-changes.ts';

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
 * after a crash the stored LSN says exactly which source transactions are in the queue.
 */
export async function enqueue(s: Session, metaSchema: string, slot: string, changes: readonly QueuedChange[], lsn: string): Promise<void> {
  await insertRows(
    s,
    metaSchema,
    LOGICAL_QUEUE,
    changes.map((c) => ({ source_table: c.sourceTable, tenant: c.tenant, lsn: c.lsn, seq: c.seq, op: c.op, key_json: JSON.stringify(c.key), row_json: c.row ? JSON.stringify(c.row) : null })),
  );
  await s.query(`UPDATE ${quoteRelation(metaSchema, LOGICAL_SLOTS.name)} SET lsn = $2, updated_at = now() WHERE slot = $1`, [slot, lsn]);
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
