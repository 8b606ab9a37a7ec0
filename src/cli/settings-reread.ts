import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Codes, TsformError } from '../errors.ts';
import { TENANTS_FILE } from '../project/load-tenants.ts';

/**
 * The files that say which practices a run builds and how (tenants.yml, tsform.yml, the
 * policies), as a run read them, told apart from what they hold once the run holds its
 * practices' locks. A run compiled before `tsform purge` of a practice that took its locks only
 * after the purge wrote every purged row back; one compiled before a linkage setting changed and
 * `tsform vault retokenize` ran re-keyed the vault under the old setting, and the next run failed
 * every practice (red-team, 2026-12-07). Reading the files again after locking, and compiling
 * again when one changed, closes both without a clock: the run builds what the files say while
 * it holds the locks.
 */
const SETTINGS_FILES = [TENANTS_FILE, 'tsform.yml', 'policies/policies.yml'];

export function settingsDigest(projectDir: string): string {
  const hash = createHash('sha256');
  for (const file of SETTINGS_FILES) {
    hash.update(`${file}\u0000`);
    try {
      hash.update(readFileSync(join(projectDir, file)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      hash.update('\u0000absent');
    }
  }
  return hash.digest('hex');
}

/** Thrown once the locks are held and the files are not what the run compiled: the run starts again. */
export class SettingsChanged extends Error {
  override name = 'SettingsChanged';
}

export function checkSettingsUnchanged(projectDir: string, compiled: string): void {
  if (settingsDigest(projectDir) !== compiled) throw new SettingsChanged(`${SETTINGS_FILES.join(', ')} changed while this run waited for its practices`);
}

/** How many times a run compiles again before it gives up on files that keep changing. */
export const SETTINGS_READS = 3;

export function settingsKeptChanging(): TsformError {
  return new TsformError(
    Codes.tenantLocked,
    `${TENANTS_FILE}, tsform.yml or the policies changed each of the ${SETTINGS_READS} times this run took its practices' locks (a purge or an edit under way); nothing was built: run again when they are settled`,
    { file: TENANTS_FILE },
  );
}

export const SETTINGS_REREAD_NOTICE = `${TENANTS_FILE}, tsform.yml or the policies changed while this run waited for its practices' locks (a purge, a retokenize or an edit): the project was compiled again from the files as they are now`;
