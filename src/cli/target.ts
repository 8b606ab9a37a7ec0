import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Adapter } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';
import type { Project, TargetConfig } from '../project/types.ts';
import type { Env } from './env.ts';

export function resolveTarget(project: Project, name?: string): TargetConfig {
  const targetName = name ?? project.config.defaultTarget;
  const target = project.config.targets[targetName];
  if (!target) {
    throw new TsformError(Codes.unknownTarget, `unknown target '${targetName}' (tsform.yml declares: ${Object.keys(project.config.targets).join(', ') || 'none'})`, { file: 'tsform.yml' });
  }
  return target;
}

/**
 * The DuckDB file a target names, when it is not there: nothing was built on that target yet.
 * Opening it would create an empty warehouse, so commands that only read check this first.
 * Undefined for a file that exists and for PostgreSQL (a server, not a file).
 */
export function unbuiltWarehouse(project: Project, target: TargetConfig): string | undefined {
  if (target.type !== 'duckdb') return undefined;
  return existsSync(inProject(project, target.path)) ? undefined : target.path;
}

/** A target's file path as tsform.yml gives it: relative paths are the project folder's. */
export const inProject = (project: Project, path: string): string => (isAbsolute(path) ? path : join(project.root, path));

export interface OpenAdapterOptions {
  threads?: number;
  onLockWait?: (holder: string) => void;
  /** Catalog name → DuckDB file attached read-only (`--defer`'s production). */
  readOnly?: Record<string, string>;
  /** How long to wait for a DuckDB file another process holds (default the adapter's, 10 minutes). */
  lockWaitMs?: number;
  /** Where a PostgreSQL target's `url_env` is looked up; default the process environment. */
  env?: Env;
}

/** The target's adapter. Drivers load on demand: compile and ls never load one. */
export async function openAdapter(project: Project, target: TargetConfig, opts: OpenAdapterOptions = {}): Promise<Adapter> {
  switch (target.type) {
    case 'duckdb': {
      const at = (p: string) => inProject(project, p);
      const { DuckDBAdapter } = await import('../adapters/duckdb/duckdb-adapter.ts');
      return DuckDBAdapter.open({
        path: at(target.path),
        connections: opts.threads ?? target.threads,
        onWait: opts.onLockWait,
        ...(opts.lockWaitMs !== undefined ? { lockWaitMs: opts.lockWaitMs } : {}),
        attach: { [project.config.schemas.research]: at(target.researchPath), [project.config.schemas.vault]: at(target.vaultPath) },
        attachReadOnly: opts.readOnly,
        settings: target.settings,
      });
    }
    case 'postgres': {
      const url = (opts.env ?? process.env)[target.urlEnv];
      if (!url) throw new TsformError(Codes.missingEnv, `target '${target.name}' reads its connection URL from $${target.urlEnv}, which is not set`);
      const { createPostgresAdapter } = await import('../adapters/postgres/postgres-adapter.ts');
      // One connection more than the statements in flight: it holds the run's practice locks.
      return createPostgresAdapter({
        url,
        poolSize: (opts.threads ?? target.threads) + 1,
        applicationName: 'tsform',
        searchPath: target.searchPath,
        ...(target.partitionByPractice ? { partitionByPractice: target.partitionByPractice } : {}),
      });
    }
    default: {
      const never: never = target;
      throw new Error(`unknown target type ${JSON.stringify(never)}`);
    }
  }
}
