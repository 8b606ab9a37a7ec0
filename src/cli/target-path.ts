import { isAbsolute, relative, resolve } from 'node:path';
import { Codes, TsformError } from '../errors.ts';

/** dbt's `DBT_TARGET_PATH`: where artifacts go when `--target-path` is not given. */
export const TARGET_PATH_ENV = 'TSFORM_TARGET_PATH';
export const DEFAULT_TARGET_PATH = 'target';

/**
 * The folder for artifacts (manifest.json, compiled SQL, run_results.json, docs): `--target-path`
 * (or `$TSFORM_TARGET_PATH`), relative to the project folder as dbt's is, else `target/`.
 * Databases stay where tsform.yml's targets put them: a warehouse is data, not an artifact.
 *
 * The project folder itself or a folder above it is refused: `tsform clean` empties the target
 * path, and `compile` replaces its `compiled/` folder.
 */
export function artifactDir(projectRoot: string, targetPath?: string): string {
  const dir = resolve(projectRoot, targetPath ?? DEFAULT_TARGET_PATH);
  const up = relative(dir, resolve(projectRoot));
  if (up === '' || (!up.startsWith('..') && !isAbsolute(up))) {
    throw new TsformError(
      Codes.badTargetPath,
      `--target-path ${JSON.stringify(targetPath)} is the project folder or a folder above it: artifacts need a folder of their own (clean empties it), e.g. --target-path target-ci`,
    );
  }
  return dir;
}
