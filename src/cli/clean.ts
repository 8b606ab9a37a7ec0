import { existsSync, readdirSync, rmSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { Project } from '../project/types.ts';
import { artifactDir } from './target-path.ts';

export interface CleanOutcome {
  removed: string[];
  /** Database files kept (a warehouse, the research file, the vault and its key are data, not artifacts). */
  kept: string[];
}

/**
 * `tsform clean`: removes what tsform writes into target/ (manifest, compiled SQL, run results,
 * docs, logs). Unlike dbt's clean, which deletes the whole target path, the DuckDB files of
 * every target stay: on the embedded default they are the warehouse and the vault, and
 * deleting the vault's key would make every person token unreproducible.
 */
export function cleanTarget(project: Project, targetPath?: string): CleanOutcome {
  const target = artifactDir(project.root, targetPath);
  if (!existsSync(target)) return { removed: [], kept: [] };
  const databases = new Set<string>();
  for (const t of Object.values(project.config.targets)) {
    if (t.type !== 'duckdb') continue;
    for (const p of [t.path, t.researchPath, t.vaultPath]) if (p) databases.add(resolve(project.root, p));
  }
  // A database file itself, its WAL, or a folder holding one.
  const isData = (file: string) => [...databases].some((db) => file === db || file.startsWith(`${db}.`) || db.startsWith(`${file}/`));
  const out: CleanOutcome = { removed: [], kept: [] };
  for (const entry of readdirSync(target)) {
    const path = resolve(target, entry);
    const rel = relative(project.root, path);
    if (isData(path)) out.kept.push(rel);
    else {
      rmSync(path, { recursive: true, force: true });
      out.removed.push(rel);
    }
  }
  return out;
}
