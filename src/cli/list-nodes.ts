import type { ManifestNode } from '../artifacts/manifest.ts';
import { holdsResearchSlices, researchSplit } from '../execute/research-withheld.ts';
import type { Plan } from '../plan/plan.ts';
import type { Workspace } from './workspace.ts';

/** One line of `tsform ls` (`--output json` prints these objects, dbt's `ls --output json` shape where it applies). */
export interface ListedNode {
  name: string;
  resource_type: 'model' | 'seed' | 'source' | 'test' | 'tenants' | 'vault';
  scope: string;
  materialized?: string;
  /** Practices it fans out to, or null when built once. */
  practices: number | null;
  /** Of those, practices withheld from research (tenants.yml `research: false`): nothing of theirs is written here. Research nodes only, when some are. */
  withheld_from_research?: number;
  path: string;
  depends_on: string[];
  tags: string[];
}

/** The plan's steps and their tests, in plan order, optionally only some resource types. */
export function listedNodes(ws: Workspace, plan: Plan, types?: readonly string[]): ListedNode[] {
  const nodes = { ...ws.manifest.sources, ...ws.manifest.builtins, ...ws.manifest.seeds, ...ws.manifest.models };
  const out: ListedNode[] = [];
  for (const step of plan.steps) {
    const n = nodes[step.id]!;
    const withheld = step.fanOut ? withheldHere(ws, plan, n) : 0;
    out.push({
      name: n.name,
      resource_type: n.kind,
      scope: n.scope,
      materialized: n.materialized,
      practices: step.fanOut ? plan.tenants.length : null,
      ...(withheld > 0 ? { withheld_from_research: withheld } : {}),
      path: n.path,
      depends_on: n.depends_on,
      tags: n.tags,
    });
    for (const t of step.tests) {
      const test = ws.manifest.tests[t]!;
      out.push({ name: `test:${test.name}`, resource_type: 'test', scope: test.scope, practices: test.scope === 'tenant' ? plan.tenants.length : null, path: test.file, depends_on: test.depends_on, tags: [] });
    }
  }
  return types?.length ? out.filter((n) => types.includes(n.resource_type)) : out;
}

function withheldHere(ws: Workspace, plan: Plan, n: ManifestNode): number {
  return holdsResearchSlices(n) || n.kind === 'vault' ? researchSplit(ws.manifest, plan.tenants).withheld.length : 0;
}
