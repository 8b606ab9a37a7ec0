import { randomBytes } from 'node:crypto';
import { Codes, TsformError } from '../errors.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import type { ChunkLoad, ChunkSource } from './chunk-load.ts';
import { CopyTextReader, parseCopyTextLine } from './copy-text.ts';
import { deleteChunkKeys, insertLiveRows, keysHeldElsewhere, type ChunkRows, type HeldElsewhere } from './slice-upsert.ts';
import { positionOf } from './watermarks.ts';

/**
 * PostgreSQL path: the OLTP's COPY text output is fed unchanged into COPY FROM STDIN of a typed
 * temp table (the format is the same on both ends), so the rows are never parsed in JavaScript.
 * Every row of the text format ends with the one unescaped newline, which gives the row count
 * and the last row (the chunk's new position). The upsert into raw waits for `finish`, after
 * the OLTP read transaction has ended. A session without copyInText gets the rows parsed and
 * inserted as text.
 */
export async function loadChunkViaCopy(src: ChunkSource): Promise<ChunkLoad> {
  const { s, spec, columns } = src;
  const name = `__tsf_capture_${randomBytes(6).toString('hex')}`;
  const names = columns.map((c) => c.name);
  const data = await src.copy(src.after, src.chunkRows, 'text');
  let rows: number;
  let lastLine: (string | null)[] | undefined;
  let load: ChunkRows;
  let dropAtEnd: string;
  if (s.copyInText) {
    // ON COMMIT DROP: the table lives for this chunk's transaction only, and writes no WAL
    await s.query(`CREATE TEMP TABLE ${quoteIdent(name)} (${columns.map((c) => `${quoteIdent(c.name)} ${c.rawType}`).join(', ')}) ON COMMIT DROP`);
    const tap = new TextTail();
    rows = await s.copyInText('pg_temp', name, names, tap.watch(data));
    if (rows !== tap.rows) throw new TsformError(Codes.sqlError, `capture ${spec.label}: COPY wrote ${rows} rows for ${tap.rows} lines`);
    lastLine = tap.lastRow();
    load = { from: quoteRelation('pg_temp', name), params: [], typed: true };
    dropAtEnd = `DROP TABLE IF EXISTS ${quoteRelation('pg_temp', name)}`;
  } else {
    await s.query(`CREATE TABLE ${quoteRelation(src.metaSchema, name)} (${names.map((n) => `${quoteIdent(n)} VARCHAR`).join(', ')})`);
    ({ rows, lastLine } = await insertParsed(src, name, data));
    load = { from: quoteRelation(src.metaSchema, name), params: [], typed: false };
    dropAtEnd = `DROP TABLE ${quoteRelation(src.metaSchema, name)}`;
  }
  if (lastLine && lastLine.length !== names.length) {
    throw new TsformError(Codes.sqlError, `capture ${spec.label}: COPY returned ${lastLine.length} fields for ${names.length} columns`);
  }
  const deletedCol = src.deletedIndex >= 0 ? quoteIdent(names[src.deletedIndex]!) : undefined;
  const byTenant = new Map<string, { rows: number; deleted: number }>();
  if (rows > 0) {
    const stats = await s.query(`SELECT CAST(${quoteIdent(spec.tenantColumn)} AS VARCHAR) AS t, count(*) AS n, ${deletedCol ? `count(${deletedCol})` : '0'} AS d FROM ${load.from} GROUP BY 1`);
    for (const r of stats.rows) byTenant.set(String(r.t), { rows: Number(r.n), deleted: Number(r.d) });
  }
  const deleted = [...byTenant.values()].reduce((a, c) => a + c.deleted, 0);
  return {
    rows,
    deleted,
    byTenant,
    last: lastLine ? positionOf(src, lastLine) : undefined,
    finish: async () => {
      let loaded = 0;
      let elsewhere: HeldElsewhere[] = [];
      if (rows > 0) {
        await deleteChunkKeys(s, spec, src.tenants, columns, load);
        loaded = await insertLiveRows(s, spec, src.tenants, columns, load);
        elsewhere = await keysHeldElsewhere(s, spec, src.tenants, columns, load);
      }
      await s.query(dropAtEnd);
      return { loaded, elsewhere };
    },
  };
}

/** Counts the rows of a COPY text stream as it passes and keeps the bytes of the last one. */
class TextTail {
  rows = 0;
  private last: Buffer | undefined;
  private partial: Buffer[] = [];

  async *watch(data: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
    for await (const b of data) {
      let end = -1;
      let prev = -1;
      for (let i = b.indexOf(0x0a); i !== -1; i = b.indexOf(0x0a, i + 1)) {
        this.rows++;
        prev = end;
        end = i;
      }
      if (end === -1) this.partial.push(b);
      else {
        this.last = prev === -1 ? Buffer.concat([...this.partial, b.subarray(0, end)]) : b.subarray(prev + 1, end);
        this.partial = end + 1 < b.length ? [b.subarray(end + 1)] : [];
      }
      yield b;
    }
    if (this.partial.some((p) => p.length > 0)) throw new Error('COPY stream ended in the middle of a row');
  }

  lastRow(): (string | null)[] | undefined {
    return this.last === undefined ? undefined : parseCopyTextLine(this.last.toString('utf8'));
  }
}

/** Without copyInText: the rows parsed in JavaScript and inserted as text (10,000 at a time). */
async function insertParsed(src: ChunkSource, table: string, data: AsyncIterable<Buffer>): Promise<{ rows: number; lastLine: (string | null)[] | undefined }> {
  const names = src.columns.map((c) => c.name);
  const reader = new CopyTextReader();
  let rows = 0;
  let lastLine: (string | null)[] | undefined;
  let pending: (string | null)[][] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    await src.s.insertText(src.metaSchema, table, names, pending);
    pending = [];
  };
  for await (const chunk of data) {
    const batch = reader.push(chunk);
    if (batch.length === 0) continue;
    for (const row of batch) {
      if (row.length !== names.length) throw new TsformError(Codes.sqlError, `capture ${src.spec.label}: COPY returned ${row.length} fields for ${names.length} columns`);
    }
    rows += batch.length;
    lastLine = batch[batch.length - 1];
    pending.push(...batch);
    if (pending.length >= 10_000) await flush();
  }
  reader.end();
  await flush();
  return { rows, lastLine };
}
