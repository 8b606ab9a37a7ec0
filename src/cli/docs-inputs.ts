import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { safeDbMessage } from '../adapters/safe-message.ts';
import { manifestNodes } from '../artifacts/manifest.ts';
import { summarizeLastRun, type DocsLastRun } from '../docs/last-run.ts';
import { TsformError } from '../errors.ts';
import { openAdapter, resolveTarget, unbuiltWarehouse } from './target.ts';
import type { Workspace } from './workspace.ts';

/** What the docs site reads besides the project: the warehouse's column types and the last run. */

/** `<target path>/run_results.json`, summarized; undefined when there is none or it is not JSON. */
export function readLastRun(targetDir: string): DocsLastRun | undefined {
  const path = join(targetDir, 'run_results.json');
  if (!existsSync(path)) return undefined;
  try {
    return summarizeLastRun(JSON.parse(readFileSync(path, 'utf8')));
  } catch {
    return undefined;
  }
}

/**
 * Column types of every built relation, from the warehouse (dbt's catalog). Never creates a
 * warehouse: a DuckDB file that does not exist yet, an unset PostgreSQL URL, or a warehouse held
 * by a run leave the types to the yml, and `note` says why.
 */
export async function readCatalog(ws: Workspace, targetName?: string): Promise<{ types?: Record<string, Record<string, string>>; note: string }> {
  const yml = 'column types from the yml (data_type)';
  let target;
  try {
    target = resolveTarget(ws.project, targetName);
  } catch (e) {
    return { note: `${yml}: ${e instanceof TsformError ? e.message : safeDbMessage(e)}` };
  }
  const unbuilt = unbuiltWarehouse(ws.project, target);
  if (unbuilt) return { note: `${yml}: the warehouse (${unbuilt}) is not built yet` };
  let adapter;
  try {
    adapter = await openAdapter(ws.project, target, { threads: 1, lockWaitMs: 2_000 });
    const types: Record<string, Record<string, string>> = {};
    for (const [id, node] of Object.entries(manifestNodes(ws.manifest))) {
      if (node.kind === 'model' && node.materialized === 'ephemeral') continue;
      const rel = await adapter.describe(node.schema, node.identifier);
      if (rel) types[id] = Object.fromEntries(rel.columns.map((c) => [c.name, c.type]));
    }
    return { types, note: `column types from the warehouse (target ${target.name}) for the ${Object.keys(types).length} built relations, else from the yml (data_type)` };
  } catch (e) {
    return { note: `${yml}: the warehouse did not answer (${e instanceof TsformError ? e.message : safeDbMessage(e)})` };
  } finally {
    await adapter?.close();
  }
}
