import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Adapter, ColumnInfo, Session, TargetKind } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';
import { safeType } from '../execute/load-csv.ts';
import { quoteIdent, quoteRelation, sqlLiteral } from '../sql/quote.ts';
import { CopyTextReader } from './copy-text.ts';
import type { OltpReadSession, OltpSource } from './oltp-source.ts';
import { planDrift, readSourceColumns, type SourceColumn } from './source-columns.ts';
import { lockTenant, writeWatermark, deleteWatermark, type Watermark } from './watermarks.ts';

/** One captured table: where it lives in the OLTP and in raw, and how its rows are keyed. */
export interface CaptureSpec {
  /** Table name in the OLTP schema and in raw. */
  table: string;
  /** Primary key without the tenant column (`['encounter_id']`). */
  key: string[];
  tenantColumn: string;
  /** OLTP schema (default `oltp`). */
  sourceSchema?: string;
  /** Warehouse schema of the captured table (default `raw`). */
  rawSchema?: string;
  /** Default `updated_at`; the OLTP must bump it on every insert, update and soft delete. */
  updatedColumn?: string;
  /** Soft-delete column (default `deleted_at`): a row with it set is deleted from raw; never copied to raw. */
  deletedColumn?: string;
}

export interface ResolvedSpec extends Required<CaptureSpec> {
  label: string;
}

export function resolveSpec(spec: CaptureSpec): ResolvedSpec {
  const r = {
    sourceSchema: 'oltp',
    rawSchema: 'raw',
    updatedColumn: 'updated_at',
    deletedColumn: 'deleted_at',
    ...spec,
  };
  if (r.key.length === 0) throw new TsformError(Codes.invalidConfig, `capture ${spec.table}: a key column is needed`);
  return { ...r, label: `${r.sourceSchema}.${r.table}` };
}

export interface ChunkRequest {
  tenant: string;
  /** `steady`, or a backfill's own stream name. */
  stream: string;
  after: Watermark | undefined;
  /** Backfill range on the updated column: `from` inclusive, `to` exclusive (ISO dates or timestamps). */
  range?: { from?: string; to?: string };
  chunkRows: number;
  timeoutMs?: number;
  /** Delete the stream's watermark row when this chunk finds the range exhausted (backfill). */
  dropWatermarkWhenDone?: boolean;
}

export interface ChunkResult {
  /** Rows read from the OLTP (live and soft-deleted). */
  read: number;
  /** Live rows written to raw. */
  loaded: number;
  /** Soft-deleted rows seen (their keys are removed from raw). */
  deleted: number;
  /** Position after this chunk (unchanged when nothing was read). */
  watermark: Watermark | undefined;
  /** Fewer rows than a chunk: the practice is caught up (or the range exhausted). */
  done: boolean;
  /** Columns added to raw by this chunk. */
  added: string[];
  /** Added columns that need a backfill (the OLTP filled earlier rows with a default). */
  needsBackfill: string[];
}

/** Shared state of one table's capture: raw's columns as last seen (refreshed on drift). */
export interface RawState {
  columns: ColumnInfo[];
}

const GUC = {
  tenant: 'tsform.capture_tenant',
  wmTs: 'tsform.capture_wm_ts',
  wmKey: (i: number) => `tsform.capture_wm_k${i}`,
  from: 'tsform.capture_from',
  to: 'tsform.capture_to',
};

/**
 * Captures the next chunk of one practice in ONE warehouse transaction: the practice's lock
 * row, the OLTP read (COPY, at most `chunkRows` rows in (updated_at, key) order after the
 * watermark), the upsert of the rows into raw and the new watermark. Either all of it commits
 * or none of it does, so a crash anywhere re-reads the same chunk and never skips one.
 */
export async function captureChunk(
  wh: Adapter,
  oltp: OltpSource,
  spec: ResolvedSpec,
  metaSchema: string,
  raw: RawState,
  req: ChunkRequest,
): Promise<ChunkResult> {
  return wh.transaction(async (s) => {
    await lockTenant(s, metaSchema, spec.label, req.tenant);
    const loadTable = `__tsf_capture_${randomBytes(6).toString('hex')}`;
    const read = await oltp.readTransaction((r) => readChunk(s, r, spec, metaSchema, raw, req, loadTable, wh.kind), { timeoutMs: req.timeoutMs });
    if (read.rows === 0) {
      await s.query(`DROP TABLE IF EXISTS ${quoteRelation(metaSchema, loadTable)}`);
      if (req.dropWatermarkWhenDone) await deleteWatermark(s, metaSchema, spec.label, req.tenant, req.stream);
      return { read: 0, loaded: 0, deleted: 0, watermark: req.after, done: true, added: read.added, needsBackfill: read.needsBackfill };
    }
    const loaded = await upsertSlice(s, spec, metaSchema, loadTable, read.columns, req.tenant, wh.kind === 'duckdb');
    await s.query(`DROP TABLE ${quoteRelation(metaSchema, loadTable)}`);
    const done = read.rows < req.chunkRows;
    if (done && req.dropWatermarkWhenDone) await deleteWatermark(s, metaSchema, spec.label, req.tenant, req.stream);
    else await writeWatermark(s, metaSchema, spec.label, req.tenant, req.stream, read.last!, read.rows);
    return { read: read.rows, loaded, deleted: read.deleted, watermark: read.last, done, added: read.added, needsBackfill: read.needsBackfill };
  });
}

interface ReadOutcome {
  rows: number;
  deleted: number;
  last: Watermark | undefined;
  columns: SourceColumn[];
  added: string[];
  needsBackfill: string[];
}

async function readChunk(
  s: Session,
  r: OltpReadSession,
  spec: ResolvedSpec,
  metaSchema: string,
  raw: RawState,
  req: ChunkRequest,
  loadTable: string,
  engine: TargetKind,
): Promise<ReadOutcome> {
  const rel = quoteRelation(spec.sourceSchema, spec.table);
  // The table lock (ACCESS SHARE) is held until this read transaction ends, so the columns
  // read next cannot change under the COPY (ALTER TABLE waits for us).
  await r.query(`SELECT 1 FROM ${rel} LIMIT 0`);
  const all = await readSourceColumns(r, spec.sourceSchema, spec.table);
  if (all.length === 0) throw new TsformError(Codes.missingRelation, `capture ${spec.label}: the source table does not exist`);
  const byName = new Map(all.map((c) => [c.name, c]));
  for (const needed of [spec.tenantColumn, spec.updatedColumn, ...spec.key]) {
    if (!byName.has(needed)) throw new TsformError(Codes.schemaChanged, `capture ${spec.label}: column "${needed}" is missing in the source`);
  }
  const columns = all.filter((c) => c.name !== spec.deletedColumn);
  const drift = planDrift(spec.label, columns, raw.columns);
  for (const c of drift.add) {
    await s.query(`ALTER TABLE ${quoteRelation(spec.rawSchema, spec.table)} ADD COLUMN ${quoteIdent(c.name)} ${c.rawType}`);
  }
  if (drift.add.length > 0) raw.columns = [...raw.columns, ...drift.add.map((c) => ({ name: c.name, type: c.rawType }))];

  const hasDeleted = byName.has(spec.deletedColumn);
  const selected = hasDeleted ? [...columns, byName.get(spec.deletedColumn)!] : columns;
  const settings: (string | null)[] = [req.tenant];
  const gucNames = [GUC.tenant];
  const where = [`${quoteIdent(spec.tenantColumn)} = current_setting('${GUC.tenant}')`];
  const upd = byName.get(spec.updatedColumn)!;
  const order = [upd, ...spec.key.map((k) => byName.get(k)!)];
  if (req.after) {
    gucNames.push(GUC.wmTs, ...spec.key.map((_, i) => GUC.wmKey(i)));
    settings.push(req.after.updatedAt, ...req.after.key);
    const bounds = order.map((c, i) => `CAST(current_setting('${i === 0 ? GUC.wmTs : GUC.wmKey(i - 1)}') AS ${safeType(c.sourceType)})`);
    where.push(`(${order.map((c) => quoteIdent(c.name)).join(', ')}) > (${bounds.join(', ')})`);
  }
  if (req.range?.from !== undefined) {
    gucNames.push(GUC.from);
    settings.push(req.range.from);
    where.push(`${quoteIdent(upd.name)} >= CAST(current_setting('${GUC.from}') AS ${safeType(upd.sourceType)})`);
  }
  if (req.range?.to !== undefined) {
    gucNames.push(GUC.to);
    settings.push(req.range.to);
    where.push(`${quoteIdent(upd.name)} < CAST(current_setting('${GUC.to}') AS ${safeType(upd.sourceType)})`);
  }
  // COPY binds no parameters: the values go in as transaction-local settings, bound here.
  await r.query(`SELECT ${gucNames.map((g, i) => `set_config('${g}', $${i + 1}, true)`).join(', ')}`, settings);
  const limit = Math.max(1, Math.floor(req.chunkRows));
  const select =
    `SELECT ${selected.map((c) => quoteIdent(c.name)).join(', ')} FROM ${rel} WHERE ${where.join(' AND ')} ` +
    `ORDER BY ${order.map((c) => quoteIdent(c.name)).join(', ')} LIMIT ${limit}`;

  if (engine === 'duckdb') {
    const fast = await copyViaFile(s, r, select, metaSchema, loadTable, selected, order, hasDeleted ? spec.deletedColumn : undefined);
    return { ...fast, columns: selected, added: drift.add.map((c) => c.name), needsBackfill: drift.needsBackfill };
  }
  const names = selected.map((c) => c.name);
  await s.query(`CREATE TABLE ${quoteRelation(metaSchema, loadTable)} (${names.map((n) => `${quoteIdent(n)} VARCHAR`).join(', ')})`);
  const updIdx = names.indexOf(upd.name);
  const keyIdx = spec.key.map((k) => names.indexOf(k));
  const delIdx = hasDeleted ? names.length - 1 : -1;
  const reader = new CopyTextReader();
  let rows = 0;
  let deleted = 0;
  let last: (string | null)[] | undefined;
  let pending: (string | null)[][] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    await s.insertText(metaSchema, loadTable, names, pending);
    pending = [];
  };
  for await (const chunk of r.copyOut(select)) {
    const batch = reader.push(chunk);
    if (batch.length === 0) continue;
    for (const row of batch) {
      if (row.length !== names.length) throw new TsformError(Codes.sqlError, `capture ${spec.label}: COPY returned ${row.length} fields for ${names.length} columns`);
      if (delIdx >= 0 && row[delIdx] !== null) deleted++;
    }
    rows += batch.length;
    last = batch[batch.length - 1];
    pending.push(...batch);
    if (pending.length >= 10_000) await flush();
  }
  reader.end();
  await flush();
  const wm = last ? { updatedAt: String(last[updIdx]), key: keyIdx.map((i) => String(last![i])) } : undefined;
  return { rows, deleted, last: wm, columns: selected, added: drift.add.map((c) => c.name), needsBackfill: drift.needsBackfill };
}

/**
 * Replaces the chunk's keys in the practice's slice of raw: every key in the chunk is deleted,
 * then the live rows are inserted (typed). Soft-deleted rows only delete.
 */
async function upsertSlice(
  s: Session,
  spec: ResolvedSpec,
  metaSchema: string,
  loadTable: string,
  columns: SourceColumn[],
  tenant: string,
  loadIsTyped: boolean,
): Promise<number> {
  const target = quoteRelation(spec.rawSchema, spec.table);
  const load = quoteRelation(metaSchema, loadTable);
  const typeOf = new Map(columns.map((c) => [c.name, c.rawType]));
  const cast = (col: string, alias: string): string => {
    const t = typeOf.get(col) ?? 'VARCHAR';
    return t === 'VARCHAR' || loadIsTyped ? `${alias}.${quoteIdent(col)}` : `CAST(${alias}.${quoteIdent(col)} AS ${t})`;
  };
  const match = spec.key.map((k) => `${cast(k, 'l')} = ${target}.${quoteIdent(k)}`).join(' AND ');
  await s.query(`DELETE FROM ${target} WHERE ${quoteIdent(spec.tenantColumn)} = $1 AND EXISTS (SELECT 1 FROM ${load} AS l WHERE ${match})`, [tenant]);
  const live = columns.filter((c) => c.name !== spec.deletedColumn);
  const hasDeleted = columns.some((c) => c.name === spec.deletedColumn);
  const insert = await s.query(
    `INSERT INTO ${target} (${live.map((c) => quoteIdent(c.name)).join(', ')})
     SELECT ${live.map((c) => cast(c.name, 'l')).join(', ')} FROM ${load} AS l
      WHERE l.${quoteIdent(spec.tenantColumn)} = $1${hasDeleted ? ` AND l.${quoteIdent(spec.deletedColumn)} IS NULL` : ''}`,
    [tenant],
  );
  return insert.rowsChanged;
}

/**
 * DuckDB path: the COPY output (CSV, every value quoted, NULL as a bare \N) goes to a temp file
 * that DuckDB's own CSV reader loads: the rows never become JavaScript values, which is what
 * makes a large practice's backlog fast (the appender costs ~1 µs per value). The chunk's row
 * count and last position come from the same snapshot by one more index-range query.
 */
async function copyViaFile(
  s: Session,
  r: OltpReadSession,
  select: string,
  metaSchema: string,
  loadTable: string,
  selected: SourceColumn[],
  order: SourceColumn[],
  deletedColumn: string | undefined,
): Promise<{ rows: number; deleted: number; last: Watermark | undefined }> {
  const tail = await r.query(
    `SELECT count(*) OVER () AS n, ${deletedColumn ? `count(${quoteIdent(deletedColumn)}) OVER ()` : '0'} AS d, ` +
      `${order.map((c, i) => `${quoteIdent(c.name)}::text AS ${quoteIdent(`w${i}`)}`).join(', ')} ` +
      `FROM (${select}) AS chunk ORDER BY ${order.map((c) => `${quoteIdent(c.name)} DESC`).join(', ')} LIMIT 1`,
  );
  const top = tail.rows[0];
  if (!top) return { rows: 0, deleted: 0, last: undefined };
  const dir = await mkdtemp(join(tmpdir(), 'tsform-capture-'));
  const file = join(dir, 'chunk.csv');
  try {
    await pipeline(Readable.from(r.copyOut(`${select}`, 'csv')), createWriteStream(file));
    // Column names and types go into the reader's options as literals (DuckDB binds no
    // parameters there); they come from the OLTP catalog, not from row data.
    // Typed by the CSV reader itself (its parsers are much faster than a CAST pass afterwards).
    const columns = selected.map((c) => `${sqlLiteral(c.name)}: ${sqlLiteral(c.rawType)}`).join(', ');
    await s.query(
      `CREATE TABLE ${quoteRelation(metaSchema, loadTable)} AS SELECT * FROM read_csv($1, columns = {${columns}}, auto_detect = false, header = false, delim = ',', quote = '"', escape = '"', nullstr = '\\N', allow_quoted_nulls = false, parallel = true)`,
      [file],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return {
    rows: Number(top.n),
    deleted: Number(top.d),
    last: { updatedAt: String(top.w0), key: order.slice(1).map((_, i) => String(top[`w${i + 1}`])) },
  };
}
