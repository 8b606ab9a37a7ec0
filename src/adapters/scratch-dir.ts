import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let dir: string | undefined;
let holders = 0;
let exitHook = false;

function remove(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

/**
 * The one directory on the file system that DuckDB may still reach once a database is locked
 * down (`allowed_directories`; duckdb-adapter.ts): a folder of this process, 0700 (mkdtemp).
 * tsform writes files there for DuckDB's own readers (a captured chunk's COPY output,
 * csv-staging.ts) and nowhere else. It lives while an adapter holds it (holdPrivateScratchDir)
 * and at the latest until the process exits.
 */
export function privateScratchDir(): string {
  if (dir === undefined) {
    dir = mkdtempSync(join(tmpdir(), `tsform-${process.pid}-`));
    // One listener for every folder this process makes. A process stopped by a signal (a test
    // worker when its pool ends) never fires 'exit': releasing the hold is what tidies up there.
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        if (dir !== undefined) remove(dir);
      });
    }
  }
  return dir;
}

/**
 * Holds the scratch folder for the life of an adapter: the last release removes it, so a
 * long-lived process (a test worker, `capture --follow` reopening its warehouse) does not leave
 * one folder per process behind. Idempotent release.
 */
export function holdPrivateScratchDir(): { path: string; release(): void } {
  const path = privateScratchDir();
  holders += 1;
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      holders -= 1;
      if (holders === 0 && dir === path) {
        dir = undefined;
        remove(path);
      }
    },
  };
}
