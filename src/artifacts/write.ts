import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Manifest } from './manifest.ts';
import type { RunResults } from './run-results.ts';

/** `target/manifest.json` and `target/compiled/<model>.sql` (the full and incremental variants). */
export function writeManifest(targetDir: string, manifest: Manifest): void {
  const compiledDir = join(targetDir, 'compiled');
  rmSync(compiledDir, { recursive: true, force: true });
  mkdirSync(compiledDir, { recursive: true });
  for (const m of Object.values(manifest.models)) {
    writeFileSync(join(compiledDir, `${m.name}.sql`), `${m.compiled_sql}\n`);
    if (m.compiled_incremental_sql !== undefined) writeFileSync(join(compiledDir, `${m.name}.incremental.sql`), `${m.compiled_incremental_sql}\n`);
  }
  writeFileSync(join(targetDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

export function writeRunResults(targetDir: string, results: RunResults): void {
  mkdirSync(targetDir, { recursive: true });
  writeFileSync(join(targetDir, 'run_results.json'), `${JSON.stringify(results, null, 2)}\n`);
}
