import { existsSync, readdirSync, rmSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { Project } from '../project/types.ts';
import { artifactDir } from './target-path.ts';

export interface CleanOutcome {
  removed: string[];
  /** Database files kept (a warehouse, the research file, the vault and its key are data, not artifacts). */
  kept: string[];
  /** Entries tsform did not write, left as they are. */
  foreign: string[];
}

/** What tsform writes into the target path (artifacts/write.ts, run-log.ts, docs-command.ts), and its temporary names. */
const ARTIFACTS = new Set(['compiled', 'manifest.json', 'run_results.json', 'run_results.full.json', 'tsform.log', 'docs']);
const TEMPORARY = /^\.(compiled|manifest)-\d+-[0-9a-f]{8}(-old|\.json)?$/;

/**
 * `tsform clean`: removes what tsform writes into target/ (manifest, compiled SQL, run results,
 * docs, logs), and nothing else. dbt's clean deletes the whole target path; here
 * `--target-path ../other-project` emptied that folder, and a plain clean deleted notes and
 * copies of databases kept in target/. The DuckDB files of every target stay too: on the
 * embedded default they are the warehouse and the vault, and deleting the vault's key would
 * make every person token unreproducible.
 */
export function cleanTarget(project: Project, targetPath?: string): CleanOutcome {
  const target = artifactDir(project.root, targetPath);
  const out: CleanOutcome = { removed: [], kept: [], foreign: [] };
  if (!existsSync(target)) return out;
  const databases = new Set<string>();
  for (const t of Object.values(project.config.targets)) {
    if (t.type !== 'duckdb') continue;
    for (const p of [t.path, t.researchPath, t.vaultPath]) if (p) databases.add(resolve(project.root, p));
  }
  // A database file itself, its WAL, or a folder holding one.
  const isData = (file: string) => [...databases].some((db) => file === db || file.startsWith(`${db}.`) || db.startsWith(`${file}/`));
  for (const entry of readdirSync(target).sort()) {
    const path = resolve(target, entry);
    const rel = relative(project.root, path);
    if (isData(path)) out.kept.push(rel);
    else if (ARTIFACTS.has(entry) || TEMPORARY.test(entry)) {
      rmSync(path, { recursive: true, force: true });
      out.removed.push(rel);
    } else out.foreign.push(rel);
  }
  return out;
}
