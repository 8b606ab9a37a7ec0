import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let dir: string | undefined;

/**
 * The one directory on the file system that DuckDB may still reach once a database is locked
 * down (`allowed_directories`; duckdb-adapter.ts): a folder of this process, 0700 (mkdtemp),
 * removed when the process exits. tsform writes files there for DuckDB's own readers (a captured
 * chunk's COPY output, csv-staging.ts) and nowhere else.
 */
export function privateScratchDir(): string {
  if (dir === undefined) {
    const created = mkdtempSync(join(tmpdir(), `tsform-${process.pid}-`));
    dir = created;
    process.once('exit', () => rmSync(created, { recursive: true, force: true }));
  }
  return dir;
}
