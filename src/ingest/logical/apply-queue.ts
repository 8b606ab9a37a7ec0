import { randomBytes } from 'node:crypto';
import type { Adapter, ColumnInfo, Session } from '../../adapters/adapter.ts';
import type { Tuple } from '../../adapters/logical-replication.ts';
import { Codes, TsformError } from '../../errors.ts';
import { countDeletion, relationKey } from '../../warehouse/deletion-epochs.ts';
import { CAPTURED_CHANGES, LOGICAL_QUEUE } from '../../warehouse/meta-schema.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import type { ResolvedSpec } from '../capture-spec.ts';
import { canonicalType } from '../source-columns.ts';
import { lockTenant } from '../watermarks.ts';

/** Queue rows applied per warehouse transaction: a backlog commits in steps and gives its slot back between them. */
export const APPLY_BATCH_ROWS = 50_000;

export interface ApplyResult {
  /** Queue rows consumed. */
  changes: number;
  /** Rows inserted or updated in raw. */
  upserted: number;
  /** Rows removed from raw (deletes, moves out, truncates). */
  deleted: number;
  /** More queue rows are waiting for this practice. */
  more: boolean;
}

/** What a key ends as after a batch of changes, in queue order. */
type Final = { op: 'delete' } | { op: 'upsert'; row: Tuple; deleteFirst: boolean };

/**
 * Applies one practice's queued changes of one table to its raw slice, in ONE warehouse
 * transaction with the practice's capture lock: the changes are folded per key in queue order
 * (a later change wins; an upsert sets only the columns it carries, so an unchanged TOASTed
 * value keeps raw's), written to raw, and deleted from the queue. A crash anywhere leaves the
 * queue rows in place for the next apply: none is applied twice. Rows removed from the slice
 * count a deletion epoch, so incremental models rebuild the practice's slice.
 */
export async function applyTenantQueue(
  wh: Adapter,
  spec: ResolvedSpec,
  metaSchema: string,
  tenant: string,
  batchRows = APPLY_BATCH_ROWS,
  /** Awaited before COMMIT with the queue rows applied (`lsn:seq`). */
  beforeCommit?: (s: Session, applied: readonly string[]) => Promise<void>,
): Promise<ApplyResult> {
  return wh.transaction(async (s) => {
    await lockTenant(s, metaSchema, spec.label, tenant);
    const queue = quoteRelation(metaSchema, LOGICAL_QUEUE.name);
    const { rows } = await s.query(
      `SELECT lsn, seq, op, key_json, row_json FROM ${queue} WHERE source_table = $1 AND tenant = $2 ORDER BY lsn, seq LIMIT ${Math.max(1, Math.floor(batchRows)) + 1}`,
      [spec.label, tenant],
    );
    const more = rows.length > batchRows;
    const batch = more ? rows.slice(0, batchRows) : rows;
    if (batch.length === 0) return { changes: 0, upserted: 0, deleted: 0, more: false };
    const { finals, truncated } = fold(batch.map((r) => ({ op: String(r.op), key: JSON.parse(String(r.key_json)) as string[], row: r.row_json === null ? undefined : (JSON.parse(String(r.row_json)) as Tuple) })));
    const info = await wh.describe(spec.rawSchema, spec.table);
    if (!info) throw new TsformError(Codes.missingRelation, `capture ${spec.label}: raw table ${spec.rawSchema}.${spec.table} is missing`);
    const raw = quoteRelation(spec.rawSchema, spec.table);
    const tc = quoteIdent(spec.tenantColumn);
    let deleted = 0;
    if (truncated) deleted += (await s.query(`DELETE FROM ${raw} WHERE ${tc} = $1`, [tenant])).rowsChanged;
    const deletes = [...finals].filter(([, f]) => f.op === 'delete' || f.deleteFirst).map(([k]) => JSON.parse(k) as string[]);
    deleted += await deleteKeys(s, spec, metaSchema, info.columns, tenant, deletes);
    let upserted = 0;
    // one group per set of columns carried (usually one: every column of the table)
    const groups = new Map<string, Tuple[]>();
    for (const f of finals.values()) {
      if (f.op !== 'upsert') continue;
      const cols = Object.keys(f.row).sort().join('\u0000');
      groups.set(cols, [...(groups.get(cols) ?? []), f.row]);
    }
    for (const [cols, group] of groups) upserted += await upsertRows(s, spec, metaSchema, info.columns, tenant, cols.split('\u0000'), group);
    const last = batch[batch.length - 1]!;
    await s.query(`DELETE FROM ${queue} WHERE source_table = $1 AND tenant = $2 AND (lsn < $3 OR (lsn = $3 AND seq <= $4))`, [spec.label, tenant, String(last.lsn), Number(last.seq)]);
    if (deleted > 0) await countDeletion(s, metaSchema, relationKey({ schema: spec.rawSchema, identifier: spec.table }), [tenant]);
    await markCaptured(s, metaSchema, tenant);
    await beforeCommit?.(s, batch.map((r) => `${String(r.lsn)}:${String(r.seq)}`));
    return { changes: batch.length, upserted, deleted, more };
  });
}

function fold(changes: readonly { op: string; key: string[]; row?: Tuple }[]): { finals: Map<string, Final>; truncated: boolean } {
  let finals = new Map<string, Final>();
  let truncated = false;
  for (const c of changes) {
    if (c.op === 'truncate') {
      // everything before it is gone with the slice
      finals = new Map();
      truncated = true;
      continue;
    }
    const k = JSON.stringify(c.key);
    const before = finals.get(k);
    if (c.op === 'delete') {
      finals.set(k, { op: 'delete' });
    } else if (c.op === 'upsert') {
      // After a delete of the same key the row is new: raw's old values must not fill its gaps.
      if (before?.op === 'upsert') finals.set(k, { op: 'upsert', row: { ...before.row, ...c.row }, deleteFirst: before.deleteFirst });
      else finals.set(k, { op: 'upsert', row: { ...c.row }, deleteFirst: before?.op === 'delete' });
    } else {
      throw new TsformError(Codes.metaSchema, `logical queue: unknown operation ${JSON.stringify(c.op)}`);
    }
  }
  return { finals, truncated };
}

/** A staging table of text columns in the meta schema, made and dropped inside the caller's transaction. */
async function stage(s: Session, metaSchema: string, columns: readonly string[], rows: readonly (string | null)[][]): Promise<{ rel: string; drop(): Promise<void> }> {
  const name = `__tsf_logical_${randomBytes(6).toString('hex')}`;
  const rel = quoteRelation(metaSchema, name);
  await s.query(`CREATE TABLE ${rel} (${columns.map((c) => `${quoteIdent(c)} VARCHAR`).join(', ')})`);
  await s.insertText(metaSchema, name, columns, rows);
  return { rel, drop: async () => void (await s.query(`DROP TABLE ${rel}`)) };
}

function castOf(columns: readonly ColumnInfo[]): (col: string, from: string) => string {
  const types = new Map(columns.map((c) => [c.name, canonicalType(c.type)]));
  return (col, from) => {
    const t = types.get(col) ?? 'VARCHAR';
    return t === 'VARCHAR' ? `${from}.${quoteIdent(col)}` : `CAST(${from}.${quoteIdent(col)} AS ${t})`;
  };
}

async function deleteKeys(s: Session, spec: ResolvedSpec, metaSchema: string, columns: readonly ColumnInfo[], tenant: string, keys: readonly string[][]): Promise<number> {
  if (keys.length === 0) return 0;
  const staged = await stage(s, metaSchema, spec.key, keys);
  const raw = quoteRelation(spec.rawSchema, spec.table);
  const cast = castOf(columns);
  const match = spec.key.map((k) => `${cast(k, 'l')} = ${raw}.${quoteIdent(k)}`).join(' AND ');
  const r = await s.query(`DELETE FROM ${raw} USING ${staged.rel} AS l WHERE ${raw}.${quoteIdent(spec.tenantColumn)} = $1 AND ${match}`, [tenant]);
  await staged.drop();
  return r.rowsChanged;
}

/** Updates the carried columns of keys raw holds, inserts the others (columns not carried are NULL there). */
async function upsertRows(s: Session, spec: ResolvedSpec, metaSchema: string, columns: readonly ColumnInfo[], tenant: string, carried: readonly string[], rows: readonly Tuple[]): Promise<number> {
  const known = new Set(columns.map((c) => c.name));
  const missing = carried.filter((c) => !known.has(c));
  if (missing.length > 0) {
    throw new TsformError(Codes.logicalSchemaChange, `capture ${spec.label}: queued changes carry column(s) ${missing.map((c) => `"${c}"`).join(', ')} that ${spec.rawSchema}.${spec.table} does not have`);
  }
  const staged = await stage(s, metaSchema, carried, rows.map((r) => carried.map((c) => r[c] ?? null)));
  const raw = quoteRelation(spec.rawSchema, spec.table);
  const cast = castOf(columns);
  const tc = quoteIdent(spec.tenantColumn);
  const match = (t: string) => spec.key.map((k) => `${cast(k, 'l')} = ${t}.${quoteIdent(k)}`).join(' AND ');
  const settable = carried.filter((c) => c !== spec.tenantColumn && !spec.key.includes(c));
  let n = 0;
  if (settable.length > 0) {
    const r = await s.query(`UPDATE ${raw} SET ${settable.map((c) => `${quoteIdent(c)} = ${cast(c, 'l')}`).join(', ')} FROM ${staged.rel} AS l WHERE ${raw}.${tc} = $1 AND ${match(raw)}`, [tenant]);
    n += r.rowsChanged;
  }
  const r = await s.query(
    `INSERT INTO ${raw} (${carried.map(quoteIdent).join(', ')}) SELECT ${carried.map((c) => cast(c, 'l')).join(', ')} FROM ${staged.rel} AS l
      WHERE l.${tc} = $1 AND NOT EXISTS (SELECT 1 FROM ${raw} AS t WHERE t.${tc} = $1 AND ${match('t')})`,
    [tenant],
  );
  n += r.rowsChanged;
  await staged.drop();
  return n;
}

/** One more change in the practice's raw data since its last model run (`state:captured`). */
export async function markCaptured(s: Pick<Session, 'query'>, metaSchema: string, tenant: string): Promise<void> {
  const rel = quoteRelation(metaSchema, CAPTURED_CHANGES.name);
  const r = await s.query(`UPDATE ${rel} SET captured = captured + 1 WHERE tenant = $1`, [tenant]);
  if (r.rowsChanged === 0) await s.query(`INSERT INTO ${rel} (tenant, captured, built) VALUES ($1, 1, 0)`, [tenant]);
}
