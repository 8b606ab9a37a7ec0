import { randomBytes } from 'node:crypto';
import type { Adapter } from '../../adapters/adapter.ts';
import { countDeletion, relationKey } from '../../warehouse/deletion-epochs.ts';
import { CAPTURED_CHANGES, LOGICAL_QUEUE } from '../../warehouse/meta-schema.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import type { ResolvedSpec } from '../capture-spec.ts';
import { CopyTextReader } from '../../adapters/copy-text.ts';
import type { OltpSource } from '../oltp-source.ts';
import { canonicalType, readSourceColumns } from '../source-columns.ts';
import { withRetry } from '../retry.ts';
import { clearBlock } from './follow-relation.ts';
import { readSlotRecord, writeSlotRecord } from './queue-writer.ts';

const ROWS_PER_APPEND = 10_000;
const SNAPSHOT_NAME = /^[0-9A-Fa-f-]+$/;

/**
 * Copies one table's live rows of the known practices from the OLTP into raw, replacing those
 * practices' slices, in one warehouse transaction that also records the table as copied for the
 * slot and drops its queued changes (the copy holds them). `snapshot`: the slot's exported
 * snapshot (the stream starts exactly where it ends); without one, a snapshot taken now: changes
 * committed between the slot's start and now are then both in the copy and in the stream, and
 * applying them again in commit order converges on the same rows (each change carries the row's
 * state, applied by key).
 */
export async function copyTable(
  wh: Adapter,
  oltp: OltpSource,
  spec: ResolvedSpec,
  opts: { metaSchema: string; slot: string; known: readonly string[]; snapshot?: string },
): Promise<number> {
  if (opts.snapshot !== undefined && !SNAPSHOT_NAME.test(opts.snapshot)) throw new RangeError(`not a snapshot name: ${JSON.stringify(opts.snapshot)}`);
  const rawRel = quoteRelation(spec.rawSchema, spec.table);
  const tc = quoteIdent(spec.tenantColumn);
  return withRetry(wh, () =>
    wh.transaction(async (s) => {
      const info = (await wh.describe(spec.rawSchema, spec.table))!;
      const stage = `__tsf_logical_copy_${randomBytes(6).toString('hex')}`;
      const stageRel = quoteRelation(opts.metaSchema, stage);
      const copied = await oltp.readTransaction(async (r) => {
        // before any other statement of the transaction (PostgreSQL's rule)
        if (opts.snapshot !== undefined) await r.query(`SET TRANSACTION SNAPSHOT '${opts.snapshot}'`);
        const source = (await readSourceColumns(r, spec.sourceSchema, spec.table)).filter((c) => c.name !== spec.deletedColumn);
        const rawNames = new Set(info.columns.map((c) => c.name));
        const cols = source.map((c) => c.name).filter((c) => rawNames.has(c));
        const hasDeleted = (await readSourceColumns(r, spec.sourceSchema, spec.table)).some((c) => c.name === spec.deletedColumn);
        await s.query(`CREATE TABLE ${stageRel} (${cols.map((c) => `${quoteIdent(c)} VARCHAR`).join(', ')})`);
        // COPY binds no parameters: the practice list reaches it as a transaction-local setting
        await r.query(`SELECT set_config('tsform.capture_tenants', $1, true)`, [`{${opts.known.map((t) => JSON.stringify(t)).join(',')}}`]);
        const select =
          `SELECT ${cols.map(quoteIdent).join(', ')} FROM ${quoteRelation(spec.sourceSchema, spec.table)} ` +
          `WHERE ${tc}::text = ANY(current_setting('tsform.capture_tenants')::text[])${hasDeleted ? ` AND ${quoteIdent(spec.deletedColumn)} IS NULL` : ''}`;
        const reader = new CopyTextReader();
        let batch: (string | null)[][] = [];
        let n = 0;
        for await (const chunk of r.copyOut(select, 'text')) {
          batch.push(...reader.push(chunk));
          if (batch.length >= ROWS_PER_APPEND) {
            await s.insertText(opts.metaSchema, stage, cols, batch);
            n += batch.length;
            batch = [];
          }
        }
        reader.end();
        await s.insertText(opts.metaSchema, stage, cols, batch);
        return { n: n + batch.length, cols, types: source.filter((c) => rawNames.has(c.name)).map((c) => [c.name, c.rawType] as const) };
      });
      const had = await s.query(`SELECT DISTINCT CAST(${tc} AS VARCHAR) AS t FROM ${rawRel} WHERE ${tc} = ANY($1::VARCHAR[])`, [[...opts.known]]);
      const types = new Map(info.columns.map((c) => [c.name, canonicalType(c.type)]));
      // A column whose type changed in the OLTP gets the type a new raw table would have (before
      // the DELETE: DuckDB alters no table with deletes of its own transaction).
      for (const [name, want] of copied.types) {
        if (types.get(name) === want) continue;
        await s.query(`ALTER TABLE ${rawRel} ALTER COLUMN ${quoteIdent(name)} TYPE ${want} USING CAST(${quoteIdent(name)} AS ${want})`);
        types.set(name, want);
      }
      await s.query(`DELETE FROM ${rawRel} WHERE ${tc} = ANY($1::VARCHAR[])`, [[...opts.known]]);
      const cast = (c: string) => (types.get(c) === 'VARCHAR' ? quoteIdent(c) : `CAST(${quoteIdent(c)} AS ${types.get(c)})`);
      await s.query(`INSERT INTO ${rawRel} (${copied.cols.map(quoteIdent).join(', ')}) SELECT ${copied.cols.map(cast).join(', ')} FROM ${stageRel}`);
      await s.query(`DROP TABLE ${stageRel}`);
      // Rows that were in raw may be gone now: the practices' incremental models rebuild their slices.
      await countDeletion(s, opts.metaSchema, relationKey({ schema: spec.rawSchema, identifier: spec.table }), had.rows.map((r) => String(r.t)));
      await s.query(`DELETE FROM ${quoteRelation(opts.metaSchema, LOGICAL_QUEUE.name)} WHERE source_table = $1`, [spec.label]);
      await clearBlock(s, opts.metaSchema, spec.label);
      // every practice's slice was (re)written: state:captured builds them all next
      await s.query(`UPDATE ${quoteRelation(opts.metaSchema, CAPTURED_CHANGES.name)} SET captured = captured + 1 WHERE tenant = ANY($1::VARCHAR[])`, [[...opts.known]]);
      const record = await readSlotRecord(s, opts.metaSchema, opts.slot);
      if (record) await writeSlotRecord(s, opts.metaSchema, opts.slot, { ...record, tables: [...new Set([...record.tables, spec.label])].sort() });
      return copied.n;
    }),
    oltp,
  );
}
