import { manifestNodes, type Manifest, type ManifestNode, type SourceNode } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import type { Adapter } from '../adapters/adapter.ts';

/** What the check needs of a run's build context (one object per run). */
export interface SharedSourceContext {
  adapter: Adapter;
  manifest: Manifest;
  tenantColumn: string;
}

/**
 * A source declared `scope: shared` is read unfiltered by every practice's models and may feed a
 * shared or global relation that every practice role reads. Compile refuses one that declares
 * the tenant column, but what a source does not declare is known only in the warehouse: `ext.people`
 * declared shared without its columns would put every practice's rows in each practice's marts. So
 * before a build reads one (directly, or through views and ephemerals, which read it where they
 * are), its relation is described, once per run: one with the tenant column is refused (TSF208)
 * and nothing is written. A relation that is not there yet is left to the model's own statement.
 */
const describedPerRun = new WeakMap<SharedSourceContext, Map<string, Promise<string | undefined>>>();

const readPerManifest = new WeakMap<Manifest, Map<string, SourceNode[]>>();

/** The shared sources a model's statement reads: directly, or through the views and ephemerals it reads. */
export function sharedSourcesRead(manifest: Manifest, node: ManifestNode): SourceNode[] {
  if (node.kind !== 'model') return [];
  let known = readPerManifest.get(manifest);
  if (!known) readPerManifest.set(manifest, (known = new Map()));
  let found = known.get(node.name);
  if (!found) known.set(node.name, (found = walkToSharedSources(manifest, node)));
  return found;
}

function walkToSharedSources(manifest: Manifest, node: ManifestNode): SourceNode[] {
  const nodes = manifestNodes(manifest);
  const out = new Map<string, SourceNode>();
  const seen = new Set<string>();
  const visit = (deps: readonly string[]) => {
    for (const dep of deps) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      const up = nodes[dep];
      if (up?.kind === 'source' && up.scope === 'shared') out.set(dep, up);
      else if (up?.kind === 'model' && (up.materialized === 'view' || up.materialized === 'ephemeral')) visit(up.depends_on);
    }
  };
  visit(node.depends_on);
  return [...out.values()];
}

/** Throws TSF208 when a shared source `node` reads holds the tenant column in the warehouse. */
export async function refuseSharedSourcesWithPractices(ctx: SharedSourceContext, node: ManifestNode): Promise<void> {
  const sources = sharedSourcesRead(ctx.manifest, node);
  if (sources.length === 0) return;
  let described = describedPerRun.get(ctx);
  if (!described) describedPerRun.set(ctx, (described = new Map()));
  for (const source of sources) {
    let column = described.get(source.name);
    if (!column) described.set(source.name, (column = tenantColumnOf(ctx, source)));
    // A failed describe (a lost connection) is not remembered: the build's retry describes again.
    const found = await column.catch((err: unknown) => {
      described.delete(source.name);
      throw err;
    });
    if (found === undefined) continue;
    throw new TsformError(
      Codes.globalReadsIdentifiable,
      `${node.name} reads ${source.name.replace(/^source:/, 'source ')} (scope: shared, read by every practice unfiltered), but ${source.schema}.${source.identifier} has the tenant column ${found} in the warehouse: its rows belong to practices; declare the source scope: tenant`,
      { file: node.path },
    );
  }
}

async function tenantColumnOf(ctx: SharedSourceContext, source: SourceNode): Promise<string | undefined> {
  const info = await ctx.adapter.describe(source.schema, source.identifier);
  return info?.columns.find((c) => c.name.toLowerCase() === ctx.tenantColumn.toLowerCase())?.name;
}
