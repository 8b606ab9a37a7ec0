import { formatRebuildPreview, previewRebuilds } from '../execute/rebuild-preview.ts';
import type { Plan } from '../plan/plan.ts';
import { openAdapter, resolveTarget } from './target.ts';
import type { Workspace } from './workspace.ts';

/** `tsform ls --rebuilds`: the preview's lines (text), or one JSON object per model. */
export async function listRebuilds(ws: Workspace, plan: Plan, targetName: string | undefined, output: 'text' | 'json', err: (line: string) => void): Promise<string[]> {
  const adapter = await openAdapter(ws.project, resolveTarget(ws.project, targetName), { threads: 1, onLockWait: (holder) => err(`waiting: the warehouse is held by another tsform run (${holder})`) });
  try {
    const preview = await previewRebuilds(adapter, ws.manifest, plan, ws.project.config.schemas.meta);
    if (output === 'text') return formatRebuildPreview(preview);
    if (!preview.recorded) return [JSON.stringify({ recorded: false })];
    return preview.models.map((m) => JSON.stringify(m));
  } finally {
    await adapter.close();
  }
}
