import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Manifest } from './manifest.ts';
import type { RunResults } from './run-results.ts';
import { toRunResultsFile } from './run-results-file.ts';
import { clearRunStarted } from './run-started.ts';

/**
 * `target/manifest.json`, `target/compiled/<model>.sql` (the full and incremental variants) and
 * `target/compiled/tests/<test>.sql`, each pasteable into duckdb or psql (`pasteableSql`).
 */
export function writeManifest(targetDir: string, manifest: Manifest): void {
  // Written aside, then renamed into place: two tsform processes in one project (two runs, a
  // run and a compile) must not delete the folder the other is writing into.
  const finalDir = join(targetDir, 'compiled');
  const compiledDir = join(targetDir, `.compiled-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(join(compiledDir, 'tests'), { recursive: true });
  const practice = manifest.tenants[0];
  for (const m of Object.values(manifest.models)) {
    writeFileSync(join(compiledDir, `${m.name}.sql`), pasteableSql(m.compiled_sql, practice, `model ${m.name} (${m.path})`));
    if (m.compiled_incremental_sql !== undefined) {
      writeFileSync(join(compiledDir, `${m.name}.incremental.sql`), pasteableSql(m.compiled_incremental_sql, practice, `model ${m.name} (${m.path}), is_incremental`));
    }
  }
  for (const t of Object.values(manifest.tests)) {
    writeFileSync(join(compiledDir, 'tests', `${t.name}.sql`), pasteableSql(t.sql, practice, `${t.kind} test ${t.name} on ${t.attached_to} (${t.file}${t.line ? `:${t.line}` : ''}): rows (tenant, failures)`));
  }
  const retired = `${compiledDir}-old`;
  try {
    renameSync(finalDir, retired);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err;
  }
  try {
    renameSync(compiledDir, finalDir);
  } catch (err) {
    // another process put its own (the same project's) compiled SQL there in between: keep it
    const code = (err as { code?: string }).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    rmSync(compiledDir, { recursive: true, force: true });
  }
  rmSync(retired, { recursive: true, force: true });
  const manifestTmp = join(targetDir, `.manifest-${process.pid}-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(manifestTmp, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(manifestTmp, join(targetDir, 'manifest.json'));
}

/**
 * Compiled SQL a person can paste into \`duckdb target/tsform.duckdb\` or psql: at execution the
 * practice ids are the bound parameter \`$1\` (never text, DESIGN §4); here \`$1\` is one practice's
 * id as an ARRAY literal, and a trailing comment says so (trailing, so that line n of the file
 * is line n of the compiled SQL that errors point at).
 */
export function pasteableSql(sql: string, practice: string | undefined, what: string): string {
  const bound = /\$1\b/.test(sql);
  // Practice ids are ^[a-z0-9][a-z0-9_]{0,62}$ (tenants.yml is checked), so the literal needs no escaping.
  const literal = practice !== undefined && /^[a-z0-9][a-z0-9_]{0,62}$/.test(practice) ? `ARRAY['${practice}']` : undefined;
  const text = bound && literal ? sql.replace(/\$1\b/g, literal) : sql;
  const note = !bound
    ? `-- tsform: compiled ${what}; runs as written.`
    : literal
      ? `-- tsform: compiled ${what}. PASTEABLE COPY: $1, the practice ids tsform binds as a parameter at\n-- execution, is written here as ${literal} (the first practice of tenants.yml); change it to see another practice.`
      : `-- tsform: compiled ${what}; $1 is the array of practice ids tsform binds at execution.`;
  return `${text}\n;\n${note}\n`;
}

/**
 * `target/run_results.json`, grouped per node (run-results-file.ts; one line, as dbt writes it);
 * with `full`, also every unit as `run_results.full.json` (version 1).
 */
export function writeRunResults(targetDir: string, results: RunResults, opts: { full?: boolean } = {}): void {
  mkdirSync(targetDir, { recursive: true });
  writeFileSync(join(targetDir, 'run_results.json'), `${JSON.stringify(toRunResultsFile(results))}\n`);
  const full = join(targetDir, 'run_results.full.json');
  if (opts.full) writeFileSync(full, `${JSON.stringify(results)}\n`);
  else rmSync(full, { force: true });
  clearRunStarted(targetDir, results);
}
