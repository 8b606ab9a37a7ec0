import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { Codes, TsformError } from '../errors.ts';

/**
 * A project file named in yml (a source's `loader: csv:` path) is the project's: a path that is
 * absolute or climbs out (`../../home/ci/.pgpass`) would load any file the process can read into
 * raw, where a shared model could copy it to every practice. Lexical: what compile can tell.
 */
export function escapesProject(path: string): boolean {
  if (isAbsolute(path) || /^[A-Za-z]:/.test(path)) return true;
  return isOutside('/project', resolve('/project', path));
}

/** `target` is not `base` or below it. */
function isOutside(base: string, target: string): boolean {
  const rel = relative(base, target);
  return rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
}

/**
 * `path` (relative to `root`) resolved with symlinks followed, or undefined when that leads
 * outside the project: a symlink committed as `data/ehr/patients.csv.gz` may point anywhere.
 * A file that does not exist resolves lexically (the reader then says it is missing).
 */
export function fileInsideProject(root: string, path: string): string | undefined {
  if (escapesProject(path)) return undefined;
  let real: string;
  try {
    real = realpathSync(resolve(root, path));
  } catch {
    return resolve(root, path);
  }
  return isOutside(realpathSync(root), real) ? undefined : real;
}

/** fileInsideProject, or TSF418 naming the path (the run's loaders call this, not join()). */
export function projectFilePath(root: string, path: string): string {
  const inside = fileInsideProject(root, path);
  if (!inside) throw new TsformError(Codes.invalidRunSetting, `${path} leads outside the project (absolute, '..', or a symlink to elsewhere); a source's loader: csv: reads files of the project only`);
  return inside;
}
