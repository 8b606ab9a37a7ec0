import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Codes, TsformError } from '../errors.ts';
import { TENANTS_FILE } from '../project/load-tenants.ts';

/**
 * tenants.yml as a run read it, told apart from what the file holds once the run holds its
 * practices' locks. A run compiled before `tsform purge` of a practice that took its locks only
 * after the purge wrote every purged row back (red-team, 2026-12-07): purge waits for a run that
 * holds the lock, not for one that has not locked yet. Reading the file again after locking,
 * and compiling again when it changed, closes that without a clock: the run builds the practices
 * the file lists while it holds their locks. An edit of the file (a practice withheld from
 * research, a time zone) is taken the same way.
 */
export function tenantsFileDigest(projectDir: string): string {
  try {
    return createHash('sha256').update(readFileSync(join(projectDir, TENANTS_FILE))).digest('hex');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
}

/** Thrown once the locks are held and the file is not what the run compiled: the run starts again. */
export class TenantsFileChanged extends Error {
  override name = 'TenantsFileChanged';
}

export function checkTenantsFileUnchanged(projectDir: string, compiled: string): void {
  if (tenantsFileDigest(projectDir) !== compiled) throw new TenantsFileChanged(`${TENANTS_FILE} changed while this run waited for its practices`);
}

/** How many times a run compiles again before it gives up on a file that keeps changing. */
export const TENANTS_READS = 3;

export function tenantsKeptChanging(): TsformError {
  return new TsformError(
    Codes.tenantLocked,
    `${TENANTS_FILE} changed each of the ${TENANTS_READS} times this run took its practices' locks (a purge or an edit under way); nothing was built: run again when it is settled`,
    { file: TENANTS_FILE },
  );
}

export const TENANTS_REREAD_NOTICE = `${TENANTS_FILE} changed while this run waited for its practices' locks (a purge or an edit): the project was compiled again from the file as it is now`;
