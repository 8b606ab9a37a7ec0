import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Adapter, Session } from '../adapters/adapter.ts';
import type { ManifestCapture, ManifestNode } from '../artifacts/manifest.ts';
import { Codes, printable, TsformError } from '../errors.ts';
import { explainCastFailure } from '../warehouse/csv-bad-value.ts';
import { csvRecords, loadCsvText, safeType } from '../warehouse/load-csv.ts';
import { LANDING_FILES, migrateMeta } from '../warehouse/meta-schema.ts';
import { createTenantTable } from '../warehouse/tenant-table.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { withRetry, type ProtectRelation } from './capture.ts';
import { listLandingFiles, openLandingFile, type LandingFile } from './landing-files.ts';
import { lockTenant } from './watermarks.ts';

export type LandingCapture = Extract<ManifestCapture, { kind: 'csv_landing' }>;

const STAGE = '__tsf_landing_stage';
/** The stage's columns without its deleted flag: the shape of a new landing table. */
const SHAPE = '__tsf_landing_shape';

export interface LandingOptions {
  projectRoot: string;
  metaSchema: string;
  tenantColumn: string;
  knownTenants: readonly string[];
  /** Row-level security of the raw table, in the transaction that creates it (PostgreSQL). */
  protect?: ProtectRelation;
}

export interface LandingResult {
  loaded: number;
  files: number;
  unknownTenantRows: number;
  /** Entries not read (links, not regular files, replaced while listed): each also a note. */
  refused: number;
  notes: string[];
}

/**
 * Loads one practice's new landing files into its slice of raw, one transaction per file (rows
 * and the file's record commit together, so a crash reloads that file and never half of it).
 * `folder_per_practice`: `<path>/<practice>/*.csv[.gz]`, rows get the folder's practice id when
 * the file has no tenant column. `practice_column`: `<path>/*.csv[.gz]`, only this practice's
 * rows are kept. A malformed file throws with its file and line; files before it stay loaded.
 */
export async function captureLandingFiles(wh: Adapter, node: ManifestNode, capture: LandingCapture, tenant: string, opts: LandingOptions): Promise<LandingResult> {
  await migrateMeta(wh, opts.metaSchema);
  await wh.ensureSchema(node.schema);
  let protect = (await wh.describe(node.schema, node.identifier)) ? undefined : opts.protect;
  const dir = capture.layout === 'folder_per_practice' ? join(capture.path, tenant) : capture.path;
  const { files, refused } = listLandingFiles(opts.projectRoot, dir, capture.layout === 'folder_per_practice');
  const seen = await loadedFiles(wh, opts.metaSchema, node.name, tenant);
  const out: LandingResult = { loaded: 0, files: 0, unknownTenantRows: 0, refused: refused.length, notes: [...refused] };
  for (const f of files) {
    const prior = seen.get(f.record);
    if (prior && prior.size === f.size && prior.mtimeMs === f.mtimeMs) continue;
    const opened = await openLandingFile(f);
    if ('refused' in opened) {
      out.notes.push(opened.refused);
      out.refused++;
      continue;
    }
    let r: Awaited<ReturnType<typeof loadOneFile>>;
    try {
      r = await withRetry(wh, () => wh.transaction((s) => loadOneFile(s, node, capture, tenant, f, opened.handle, { ...opts, protect })));
    } catch (err) {
      throw await explainLandingFailure(err, wh, node, capture, tenant, f, opened.handle, opts.tenantColumn);
    } finally {
      await opened.handle.close();
    }
    protect = undefined;
    out.loaded += r.loaded;
    out.unknownTenantRows += r.unknown;
    out.files++;
    for (const c of r.added) out.notes.push(`new landing column "${printable(c)}" added to ${node.schema}.${node.identifier}`);
    out.notes.push(...r.notes);
  }
  if (out.files > 0) out.notes.push(`${out.files} landing file(s) loaded`);
  return out;
}

async function loadOneFile(
  s: Session,
  node: ManifestNode,
  capture: LandingCapture,
  tenant: string,
  f: LandingFile,
  file: FileHandle,
  opts: LandingOptions,
): Promise<{ loaded: number; unknown: number; added: string[]; notes: string[] }> {
  const tc = opts.tenantColumn;
  // Two processes loading one practice's files queue here (the same lock row as capture chunks).
  await lockTenant(s, opts.metaSchema, `landing:${node.name}`, tenant);
  const load = `__tsf_landing_${randomBytes(6).toString('hex')}`;
  const filterByColumn = capture.layout === 'practice_column' || (await headerHas(f, file, tc));
  const csv = await loadCsvText(
    s,
    file,
    f.display,
    opts.metaSchema,
    load,
    filterByColumn ? { column: tc, wanted: new Set([tenant]), known: new Set(opts.knownTenants) } : undefined,
  );
  const columns = csv.header.filter((h) => h !== capture.deleted_at && h !== tc);
  const typed = columns.map((c) => {
    const t = node.columns[c]?.data_type;
    return t && !/^(varchar|text)$/i.test(t) ? `CAST(l.${quoteIdent(c)} AS ${safeType(t)}) AS ${quoteIdent(c)}` : `l.${quoteIdent(c)}`;
  });
  const deletedIn = csv.header.includes(capture.deleted_at) ? `l.${quoteIdent(capture.deleted_at)} IS NOT NULL` : 'FALSE';
  // The practice id comes from the bound parameter, never from the file: a row lands in this slice only.
  await s.createTempTableAs(
    STAGE,
    `SELECT CAST($1 AS VARCHAR) AS ${quoteIdent(tc)}, ${typed.join(', ')}, ${deletedIn} AS __tsf_deleted FROM ${quoteRelation(opts.metaSchema, load)} AS l`,
    [tenant],
  );
  const target = quoteRelation(node.schema, node.identifier);
  const stageCols = [tc, ...columns];
  const present = await s.query(`SELECT count(*) AS n FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = $1 AND table_name = $2`, [node.schema, node.identifier]);
  if (Number(present.rows[0]?.n) === 0) {
    // Partitioned by practice where the target partitions tenant-scoped tables, as models' are.
    await s.createTempTableAs(SHAPE, `SELECT ${stageCols.map(quoteIdent).join(', ')} FROM ${quoteIdent(STAGE)} LIMIT 0`, []);
    await createTenantTable(s, node.schema, node.identifier, SHAPE, tc);
    await s.query(`DROP TABLE ${quoteIdent(SHAPE)}`);
  }
  await opts.protect?.(s);
  const existing = (await s.query(`SELECT * FROM ${target} LIMIT 0`)).columns;
  // A new column in the files is added (nullable); a column the files no longer carry stays NULL.
  const added = columns.filter((c) => !existing.includes(c));
  for (const c of added) await s.query(`ALTER TABLE ${target} ADD COLUMN ${quoteIdent(c)} ${safeType(node.columns[c]?.data_type ?? 'VARCHAR')}`);
  if (capture.key.length > 0) {
    const missing = capture.key.filter((k) => !columns.includes(k));
    if (missing.length > 0) throw new TsformError(Codes.raggedCsv, `${f.display}:1: key column(s) ${missing.join(', ')} missing in the header`, { file: f.display, line: 1 });
    const match = capture.key.map((k) => `st.${quoteIdent(k)} = ${target}.${quoteIdent(k)}`).join(' AND ');
    await s.query(`DELETE FROM ${target} WHERE ${quoteIdent(tc)} = $1 AND EXISTS (SELECT 1 FROM ${quoteIdent(STAGE)} AS st WHERE ${match})`, [tenant]);
  }
  const cols = stageCols.map(quoteIdent).join(', ');
  const inserted = await s.query(`INSERT INTO ${target} (${cols}) SELECT ${cols} FROM ${quoteIdent(STAGE)} WHERE NOT __tsf_deleted`);
  await s.query(`DROP TABLE ${quoteIdent(STAGE)}`);
  await s.query(`DROP TABLE ${quoteRelation(opts.metaSchema, load)}`);
  const rel = quoteRelation(opts.metaSchema, LANDING_FILES.name);
  await s.query(`DELETE FROM ${rel} WHERE source_table = $1 AND tenant = $2 AND file = $3`, [node.name, tenant, f.record]);
  await s.query(`INSERT INTO ${rel} (source_table, tenant, file, size_bytes, mtime_ms, rows_loaded, loaded_at) VALUES ($1, $2, $3, $4, $5, $6, now())`, [
    node.name,
    tenant,
    f.record,
    f.size,
    f.mtimeMs,
    inserted.rowsChanged,
  ]);
  // A practice's folder holds its own rows only: another practice's rows there are left out, and said.
  const notes =
    capture.layout === 'folder_per_practice' && csv.otherTenantRows > 0
      ? [`${f.display}: ${csv.otherTenantRows} row(s) carry another practice's ${tc} (first at line ${csv.firstOtherTenantLine}); not loaded: a practice's folder holds only its own rows`]
      : [];
  return { loaded: inserted.rowsChanged, unknown: csv.unknownTenantRows, added, notes };
}

/** A failed load's error, or the file, line and column of the first value its declared type cannot hold (loadOneFile's casts). */
async function explainLandingFailure(err: unknown, wh: Adapter, node: ManifestNode, capture: LandingCapture, tenant: string, f: LandingFile, file: FileHandle, tc: string): Promise<unknown> {
  const types = Object.fromEntries(
    Object.entries(node.columns)
      .filter(([c]) => c !== capture.deleted_at && c !== tc)
      .map(([c, v]) => [c, v.data_type]),
  );
  const filtered = capture.layout === 'practice_column' || (await headerHas(f, file, tc));
  return explainCastFailure(err, wh, { file, display: f.display }, types, filtered ? { column: tc, wanted: new Set([tenant]) } : undefined);
}

/** Whether the file's header names the tenant column (folder layout files may leave it out). */
async function headerHas(f: LandingFile, file: FileHandle, column: string): Promise<boolean> {
  const { records, close } = csvRecords(file, f.display);
  try {
    for await (const { record } of records) return record.includes(column);
    return false;
  } catch {
    // A file whose first line is unreadable fails in the real load, with its line.
    return false;
  } finally {
    close();
  }
}

async function loadedFiles(wh: Adapter, metaSchema: string, source: string, tenant: string): Promise<Map<string, { size: number; mtimeMs: number }>> {
  const { rows } = await wh.query(`SELECT file, size_bytes, mtime_ms FROM ${quoteRelation(metaSchema, LANDING_FILES.name)} WHERE source_table = $1 AND tenant = $2`, [source, tenant]);
  return new Map(rows.map((r) => [String(r.file), { size: Number(r.size_bytes), mtimeMs: Number(r.mtime_ms) }]));
}
