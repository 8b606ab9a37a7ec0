import type { DuckDBConnection } from '@duckdb/node-api';
import { Codes, TsformError } from '../../errors.ts';
import { sqlLiteral } from '../../sql/quote.ts';

/**
 * Model SQL runs on this instance, so once tsform's own files are attached it reaches no other
 * file: `enable_external_access = false` (per instance, every connection) refuses read_csv,
 * read_text, glob, COPY TO/FROM, ATTACH of a file, INSTALL/LOAD and getenv; the databases already
 * attached keep working, and so does DuckDB's own spill folder. The one folder left open
 * (`allowed_directories`) is the process's private 0700 scratch folder, where capture puts a
 * chunk's COPY output for DuckDB's CSV reader (csv-staging.ts: much faster than appending
 * values from JavaScript). A model could read an in-flight chunk there, i.e. rows it could read
 * from raw anyway (DuckDB has no roles); nothing outside tsform's files. CSV sources and seeds
 * are read by Node and appended (load-csv.ts), so they need no folder. `lock_configuration`
 * then refuses every SET (and RESET) that would give any of this back, for the life of the instance.
 */
export async function lockDown(conn: DuckDBConnection, settings: Record<string, string>, scratchDir: string): Promise<void> {
  for (const [name, value] of Object.entries(settings)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new TsformError(Codes.invalidRunSetting, `DuckDB setting name ${JSON.stringify(name)} is not an identifier`);
    await conn.run(`SET ${name} = ${sqlLiteral(value)}`);
  }
  await conn.run(`SET allowed_directories = [${sqlLiteral(`${scratchDir}/`)}]`);
  await conn.run('SET enable_external_access = false');
  await conn.run('SET lock_configuration = true');
}
