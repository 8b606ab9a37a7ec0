import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Codes, TsformError } from '../errors.ts';

/** dbt's `DBT_TARGET_PATH`: where artifacts go when `--target-path` is not given. */
export const TARGET_PATH_ENV = 'TSFORM_TARGET_PATH';
export const DEFAULT_TARGET_PATH = 'target';

/**
 * What a project is read from (project/load-project.ts; `data/` holds the CSV extracts of the
 * template and the demo). Artifacts written into one of these folders are read back as the
 * project's: `--target-path models` put compiled SQL beside the models, and the next compile
 * was TSF104 for every model.
 */
const PROJECT_INPUTS = ['models', 'macros', 'seeds', 'tests', 'policies', 'data', 'tsform.yml', 'tenants.yml'];

/**
 * The folder for artifacts (manifest.json, compiled SQL, run_results.json, docs): `--target-path`
 * (or `$TSFORM_TARGET_PATH`), relative to the project folder as dbt's is, else `target/`.
 * Databases stay where tsform.yml's targets put them: a warehouse is data, not an artifact.
 *
 * Refused (TSF306): the project folder or a folder above it (`tsform clean` empties the target
 * path, and `compile` replaces its `compiled/` folder), and a folder the project is read from or
 * anything under it; compared after symbolic links are followed.
 */
export function artifactDir(projectRoot: string, targetPath?: string): string {
  const dir = resolve(projectRoot, targetPath ?? DEFAULT_TARGET_PATH);
  const root = realPath(resolve(projectRoot));
  const real = realPath(dir);
  const up = relative(real, root);
  if (up === '' || (!up.startsWith('..') && !isAbsolute(up))) {
    throw new TsformError(
      Codes.badTargetPath,
      `--target-path ${JSON.stringify(targetPath)} is the project folder or a folder above it: artifacts need a folder of their own (clean empties it), e.g. --target-path target-ci`,
    );
  }
  const inside = relative(root, real);
  const top = inside.split(sep)[0]!;
  if (!inside.startsWith('..') && !isAbsolute(inside) && PROJECT_INPUTS.includes(top)) {
    throw new TsformError(
      Codes.badTargetPath,
      `--target-path ${JSON.stringify(targetPath)} is ${inside === top ? '' : 'inside '}${top.endsWith('.yml') ? top : `${top}/`}, which the project is read from: compiled SQL there would be read back as the project's; use a folder of its own, e.g. --target-path target-ci`,
    );
  }
  return dir;
}

/** The path with symbolic links followed, as far as it exists (a target path is often not made yet). */
function realPath(p: string): string {
  if (existsSync(p)) return realpathSync(p);
  const parent = dirname(p);
  return parent === p ? p : join(realPath(parent), basename(p));
}
