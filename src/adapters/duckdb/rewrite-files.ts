import type { DuckDBConnection } from '@duckdb/node-api';
import { existsSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { Codes, TsformError } from '../../errors.ts';
import { quoteIdent, sqlLiteral } from '../../sql/quote.ts';
import { classifyDuckDBError } from './duckdb-adapter.ts';
import { openWaiting } from './open-waiting.ts';
import { COMPANION_FILES, tightenDatabaseFiles } from './private-files.ts';

/**
 * DuckDB keeps a deleted row's bytes in its file: a DELETE marks rows, a checkpoint or VACUUM
 * does not rewrite the row groups around them (measured on DuckDB 1.5: 500 of 500,000 rows
 * deleted across the table, CHECKPOINT and VACUUM, every deleted value still in the file). After
 * `tsform purge` a copy or backup of the file still held the purged practice's SSNs, names and
 * patient id ↔ token pairs (red-team, 2026-12-07). A copy made with COPY FROM DATABASE holds the
 * live rows only; it replaces the file once checked against it.
 */

export interface RewrittenFile {
  file: string;
  bytesBefore: number;
  bytesAfter: number;
}

const COPY_ALIAS = '__tsf_rewrite';

/**
 * Replaces a warehouse's DuckDB files (the main one and those attached under a schema's name, as
 * the adapter opens them, so that views across them bind) by copies of their live contents. A
 * process holding the files (the caller has closed its adapter) is waited for as a run waits
 * (TSF412 when the wait runs out, nothing changed). Every copy is checked against its file first, each table's row count
 * and the catalog (tables, views, sequences, indexes, macros, constraints): if one differs, every
 * copy is removed and every file kept (TSF401).
 */
export async function rewriteDatabaseFiles(main: string, attach: Readonly<Record<string, string>>): Promise<RewrittenFile[]> {
  if (main === ':memory:' || !existsSync(main)) return [];
  const dbs = [{ file: main, alias: undefined as string | undefined }, ...Object.entries(attach).map(([alias, file]) => ({ file, alias }))].filter((d) => existsSync(d.file));
  const copies = dbs.map((d, i) => {
    const real = databaseFile(d.file);
    return { ...d, real, copy: `${real}.rewrite`, copyAlias: `${COPY_ALIAS}_${i}`, bytesBefore: statSync(real).size };
  });
  for (const c of copies) removeWithCompanions(c.copy);
  try {
    const instance = await openWaiting(main, { classify: classifyDuckDBError });
    const conn = await instance.connect();
    try {
      for (const c of copies) if (c.alias !== undefined) await conn.run(`ATTACH ${sqlLiteral(c.file)} AS ${quoteIdent(c.alias)}`);
      const mainDb = String((await conn.runAndReadAll('SELECT current_database() AS d')).getRows()[0]![0]);
      for (const c of copies) {
        const db = c.alias ?? mainDb;
        await conn.run(`CHECKPOINT ${quoteIdent(db)}`);
        await conn.run(`ATTACH ${sqlLiteral(c.copy)} AS ${quoteIdent(c.copyAlias)}`);
        await conn.run(`COPY FROM DATABASE ${quoteIdent(db)} TO ${quoteIdent(c.copyAlias)}`);
        const [original, copied] = [await contents(conn, db), await contents(conn, c.copyAlias)];
        await conn.run(`CHECKPOINT ${quoteIdent(c.copyAlias)}`);
        if (original !== copied) throw new TsformError(Codes.sqlError, `rewriting ${c.file} without its deleted rows: the copy differs from it (tables, rows or catalog); every file is kept as it was`);
      }
      // A log left beside a copy would be rows the rename leaves behind, and one beside a file
      // would be replayed onto its copy at the next open.
      for (const c of copies) {
        if ([c.copy, c.file, c.real].some((f) => existsSync(`${f}.wal`))) throw new TsformError(Codes.sqlError, `rewriting ${c.file}: a write-ahead log was left after the checkpoint; every file is kept as it was`);
      }
      // Renamed while this instance still holds every original and every copy: a run waiting for
      // the file lock finds the copy locked, not the old file free. Renamed after closing, a run
      // that opened the old file in between wrote into a file the rename then unlinked, and its
      // whole build vanished while it reported success (red-team, 2026-12-07: the gap measured
      // 10-22 ms; reproduced with it widened).
      for (const c of copies) {
        tightenDatabaseFiles(c.copy);
        renameSync(c.copy, c.real);
      }
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
    return copies.map((c) => ({ file: c.file, bytesBefore: c.bytesBefore, bytesAfter: statSync(c.real).size }));
  } finally {
    for (const c of copies) removeWithCompanions(c.copy);
  }
}

/**
 * The file a path's bytes are in: a symbolic link is followed, so that the file behind it is the
 * one rewritten (renaming onto the link would leave every deleted byte in that file and replace
 * the link). Anything but a regular file (a device, a pipe: a target path of `/dev/null` had it
 * replaced by a copy) is refused before anything is written.
 */
function databaseFile(path: string): string {
  const real = realpathSync(path);
  if (!statSync(real).isFile()) throw new TsformError(Codes.invalidRunSetting, `${path} is not a regular file: tsform rewrites only the database files it writes; nothing was changed`);
  return real;
}

/** A database's catalog and each table's row count, as one comparable text. */
async function contents(conn: DuckDBConnection, db: string): Promise<string> {
  const lit = sqlLiteral(db);
  const catalog = await conn.runAndReadAll(
    `SELECT 'table' AS k, schema_name AS s, table_name AS n, sql AS d FROM duckdb_tables() WHERE database_name = ${lit}
     UNION ALL SELECT 'view', schema_name, view_name, sql FROM duckdb_views() WHERE database_name = ${lit} AND NOT internal
     UNION ALL SELECT 'sequence', schema_name, sequence_name, CAST(last_value AS VARCHAR) FROM duckdb_sequences() WHERE database_name = ${lit}
     UNION ALL SELECT 'index', schema_name, index_name, sql FROM duckdb_indexes() WHERE database_name = ${lit}
     UNION ALL SELECT 'macro', schema_name, function_name, macro_definition FROM duckdb_functions() WHERE database_name = ${lit} AND NOT internal AND function_type IN ('macro', 'table_macro')
     UNION ALL SELECT 'constraint', schema_name, table_name, constraint_text FROM duckdb_constraints() WHERE database_name = ${lit}
     ORDER BY 1, 2, 3, 4`,
  );
  const lines: string[] = [];
  for (const [k, schema, name, d] of catalog.getRows()) {
    lines.push([k, schema, name, d].map((v) => (v === null ? '' : String(v))).join('\u0001'));
    if (k !== 'table') continue;
    const n = (await conn.runAndReadAll(`SELECT count(*) AS n FROM ${quoteIdent(db)}.${quoteIdent(String(schema))}.${quoteIdent(String(name))}`)).getRows()[0]![0];
    lines.push(`rows\u0001${String(schema)}\u0001${String(name)}\u0001${String(n)}`);
  }
  return lines.join('\n');
}

function removeWithCompanions(file: string): void {
  for (const suffix of COMPANION_FILES) rmSync(file + suffix, { force: true });
}
