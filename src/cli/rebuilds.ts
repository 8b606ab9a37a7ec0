import { formatRebuildPreview, previewRebuilds, type RebuildPreviewResult } from '../execute/rebuild-preview.ts';
import type { Plan } from '../plan/plan.ts';
import { openAdapter, resolveTarget, unbuiltWarehouse } from './target.ts';
import type { Workspace } from './workspace.ts';

/** `tsform ls --rebuilds`: the preview's lines (text), or one JSON object per model. */
export async function listRebuilds(ws: Workspace, plan: Plan, targetName: string | undefined, output: 'text' | 'json', err: (line: string) => void): Promise<string[]> {
  const preview = await readPreview(ws, plan, targetName, err);
  if (output === 'text') return formatRebuildPreview(preview);
  if (!preview.recorded) return [JSON.stringify({ recorded: false })];
  return preview.models.map((m) => JSON.stringify(m));
}

async function readPreview(ws: Workspace, plan: Plan, targetName: string | undefined, err: (line: string) => void): Promise<RebuildPreviewResult> {
  const target = resolveTarget(ws.project, targetName);
  // Opening a DuckDB file that is not there would create it: a preview writes nothing.
  if (unbuiltWarehouse(ws.project, target)) return { recorded: false, models: [] };
  const adapter = await openAdapter(ws.project, target, { threads: 1, onLockWait: (holder) => err(`waiting: the warehouse is held by another tsform run (${holder})`) });
  try {
    return await previewRebuilds(adapter, ws.manifest, plan, ws.project.config.schemas.meta);
  } finally {
    await adapter.close();
  }
}
