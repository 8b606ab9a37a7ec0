import type { Adapter } from '../adapters/adapter.ts';
import type { Manifest } from '../artifacts/manifest.ts';
import type { Plan } from '../plan/plan.ts';
import { RELATION_VERSIONS } from '../warehouse/meta-schema.ts';
import { rebuildCounts, sliceRebuilds, wholeRebuild, type RebuildCounts } from './strategies/rebuild-decisions.ts';

/**
 * What the next run does with each selected incremental model's existing rows, read from the
 * warehouse without writing (`tsform ls --rebuilds`): how many practices it merges into and how
 * many it rebuilds in full, and why. A changed model rebuilds its slices, and those of every
 * incremental model downstream (relation-versions.ts); at thousands of practices that is a run
 * of its own, which a reviewer wants to see before the pull request lands, as SQLMesh's plan
 * shows a breaking change.
 */
export interface RebuildPreview {
  model: string;
  /** Practices selected; null for a relation built whole (global, published research). */
  practices: number | null;
  /** Whether the relation exists: when not, everything is `fresh`. */
  built: boolean;
  /** Practices (or the one whole relation) merged with the `is_incremental` rendering. */
  merged: number;
  /** Rebuilt from the full rendering, by reason; `fresh` are built for the first time. */
  full: RebuildCounts;
}

export type RebuildPreviewResult = { recorded: true; models: RebuildPreview[] } | { recorded: false; models: [] };

const NONE: RebuildCounts = { deletedUpstream: 0, changed: 0, unrecorded: 0, fresh: 0 };

export async function previewRebuilds(adapter: Adapter, manifest: Manifest, plan: Plan, metaSchema: string): Promise<RebuildPreviewResult> {
  // No record table: a warehouse never built, or built before tsform recorded versions.
  if (!(await adapter.describe(metaSchema, RELATION_VERSIONS.name))) return { recorded: false, models: [] };
  const models: RebuildPreview[] = [];
  for (const step of plan.steps) {
    const node = manifest.models[step.id];
    if (!step.build || !node || node.materialized !== 'incremental') continue;
    const built = (await adapter.describe(node.schema, node.identifier)) !== undefined;
    const practices = step.fanOut ? plan.tenants.length : null;
    const units = practices ?? 1;
    if (!built) {
      models.push({ model: node.name, practices, built, merged: 0, full: { ...NONE, fresh: units } });
    } else if (step.fanOut) {
      const decided = await sliceRebuilds(adapter, metaSchema, manifest, node, plan.tenants, false);
      models.push({ model: node.name, practices, built, merged: decided.rest.length, full: await rebuildCounts(adapter, node, manifest.tenant_column, decided) });
    } else {
      const why = await wholeRebuild(adapter, metaSchema, manifest, node);
      models.push({ model: node.name, practices, built, merged: why ? 0 : 1, full: { ...NONE, ...(why ? { [why]: 1 } : {}) } });
    }
  }
  return { recorded: true, models };
}

/** One line per model, counts only. */
export function formatRebuildPreview(r: RebuildPreviewResult): string[] {
  if (!r.recorded) return ['no version records in this warehouse (never built, or built before tsform recorded versions): the next run builds every incremental model in full'];
  if (r.models.length === 0) return ['no incremental model selected'];
  return r.models.map((m) => {
    const f = m.full;
    const reasons = [
      f.changed > 0 ? `${m.practices === null ? '' : `${f.changed} `}SQL changed here or upstream` : '',
      f.deletedUpstream > 0 ? `${f.deletedUpstream} rows deleted upstream` : '',
      f.unrecorded > 0 ? `${m.practices === null ? '' : `${f.unrecorded} `}no record of the SQL that built ${m.practices === null ? 'it' : 'them'}` : '',
    ].filter(Boolean);
    const why = reasons.length > 0 ? ` (${reasons.join('; ')})` : '';
    if (m.practices === null) return `${m.model}\tbuilt whole: ${f.fresh > 0 ? 'built for the first time' : m.merged > 0 ? 'merged' : `rebuilt in full${why}`}`;
    const inFull = f.changed + f.deletedUpstream + f.unrecorded;
    return `${m.model}\t${m.practices} practice(s): ${m.merged} merged, ${inFull} rebuilt in full${why}, ${f.fresh} new`;
  });
}
