import { constants, lstatSync, readdirSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Codes, printable, TsformError } from '../errors.ts';

/**
 * Which files of a landing folder tsform reads, and how it opens them. A practice's folder is
 * often the practice's own upload area (SFTP), so whoever uploads there can also make links: a
 * link `mine.csv -> ../other_practice/visits.csv`, or a folder that is a link to another
 * practice's folder, would load another practice's rows as this practice's (the folder names
 * the practice). So only regular files directly in the folder are read, the folder itself must
 * not be a link, and a file is opened without following a link put there after it was listed.
 * The landing path above the practice folders may be a link (a mounted drop volume): that is
 * the operator's choice, made once for every practice.
 */
export interface LandingFile {
  /** Relative to the project root, as messages show it (`printable`: the name is the uploader's). */
  display: string;
  /** Relative to the project root, as named: the key of its record in landing_files. */
  record: string;
  path: string;
  size: number;
  mtimeMs: number;
  /** Identity of the file as listed: a file swapped before it is opened is not read. */
  dev: number;
  ino: number;
}

export interface LandingListing {
  files: LandingFile[];
  /** Entries named like landing files that are not read, each with why (names only, no content). */
  refused: string[];
}

const LANDING_NAME = /\.csv(\.gz)?$/i;

/**
 * The landing files of `dir` (relative to `root`) in name order. `practiceFolder`: `dir` is one
 * practice's folder and must be a directory, not a link (TSF121 otherwise).
 */
export function listLandingFiles(root: string, dir: string, practiceFolder: boolean): LandingListing {
  const abs = join(root, dir);
  const st = lstatOrUndefined(abs);
  if (!st) return { files: [], refused: [] };
  if (practiceFolder && !st.isDirectory()) {
    throw new TsformError(
      Codes.landingFolder,
      `${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}: a practice's landing folder must be a directory of its own (the folder names the practice whose rows it holds); nothing loaded for this practice`,
      { file: dir },
    );
  }
  const files: LandingFile[] = [];
  const refused: string[] = [];
  for (const d of readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (!LANDING_NAME.test(d.name)) continue;
    const record = `${dir}/${d.name}`;
    const display = printable(record);
    const f = lstatOrUndefined(join(abs, d.name));
    if (!f) continue; // removed since the folder was read
    if (!f.isFile()) {
      refused.push(`${display}: ${f.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; not loaded (landing files are regular files in the folder)`);
      continue;
    }
    files.push({ display, record, path: join(abs, d.name), size: f.size, mtimeMs: Math.round(f.mtimeMs), dev: f.dev, ino: f.ino });
  }
  return { files, refused };
}

/**
 * Opens a listed file for reading, or says why not: refusing a link at the last step (O_NOFOLLOW)
 * and anything but the regular file that was listed (O_NONBLOCK: a FIFO put there does not hang
 * the run). The caller closes the handle.
 */
export async function openLandingFile(f: LandingFile): Promise<{ handle: FileHandle } | { refused: string }> {
  const changed = { refused: `${f.display}: replaced while the run read the folder; not loaded (the next run reads it)` };
  let handle: FileHandle;
  try {
    handle = await open(f.path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOENT') return changed;
    throw err;
  }
  const st = await handle.stat();
  if (!st.isFile() || st.dev !== f.dev || st.ino !== f.ino) {
    await handle.close();
    return changed;
  }
  return { handle };
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
