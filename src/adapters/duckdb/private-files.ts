import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Codes, TsformError } from '../../errors.ts';

/**
 * What DuckDB keeps beside a database (names from DuckDB 1.5): its write-ahead log and the log's
 * checkpoint and recovery copies, and the spill folder `<file>.tmp`. DuckDB deletes the log at
 * every checkpoint and creates it again with the process umask (usually 0644); the 0700 folder
 * is what keeps a log written mid-run private, and tsform tightens whatever it finds.
 */
export const COMPANION_FILES = ['', '.wal', '.wal.checkpoint', '.wal.recovery'];
const SPILL_FOLDER = '.tmp';

/**
 * The folder of a database file tsform writes (warehouse, research, vault: PHI or the key),
 * made 0700 before DuckDB creates anything in it: created so when missing, tightened when looser.
 * A folder others may enter that tsform cannot tighten (not its own, e.g. /tmp) is refused, since
 * the log and spill files DuckDB creates there would be readable.
 */
export function preparePrivateFolder(file: string): void {
  if (file === ':memory:') return;
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const full = statSync(dir).mode;
  const mode = full & 0o777;
  if ((mode & 0o077) === 0) return;
  // A shared scratch folder (sticky, or writable by anyone: /tmp) is never tightened, even where
  // tsform could (as root): that would lock every other user and service out of it.
  if ((full & 0o1000) !== 0 || (mode & 0o002) !== 0) {
    throw new TsformError(
      Codes.connection,
      `the folder of DuckDB database ${file} is shared (mode ${(full & 0o7777).toString(8)}); keep database files in a folder of their own`,
    );
  }
  try {
    chmodSync(dir, mode & 0o700);
  } catch {
    throw new TsformError(
      Codes.connection,
      `the folder of DuckDB database ${file} is open to other users (mode ${mode.toString(8)}) and tsform cannot make it 0700; keep database files in a folder of their own`,
    );
  }
}

/** The database file and its companions 0600, its spill folder 0700 (DuckDB creates them with the umask; a copy may arrive looser). */
export function tightenDatabaseFiles(file: string): void {
  if (file === ':memory:') return;
  for (const suffix of COMPANION_FILES) tighten(file + suffix, 0o600);
  tighten(file + SPILL_FOLDER, 0o700);
}

function tighten(path: string, mode: number): void {
  try {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, mode);
  } catch (err) {
    // Absent, or removed by a checkpoint in the meantime.
    if ((err as { code?: string }).code !== 'ENOENT') throw err;
  }
}
