import type { DraftNode } from './draft-node.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';

/** What a model may read given its scope and whether it is pseudonymized (DESIGN §2, §4). */
export function checkScopes(node: DraftNode, nodes: Record<string, DraftNode>, diagnostics: Diagnostic[], lineOfRead: (dep: string) => number | undefined): void {
  for (const dep of node.depends_on) {
    const up = nodes[dep];
    if (!up) continue;
    // At the {{ref}} / {{source}} that reads it (a macro's read: the model's first ref).
    const line = lineOfRead(dep) ?? 1;
    if (node.scope === 'global' && up.scope === 'tenant' && !up.pseudonymized) {
      diagnostics.push(
        diagnostic(
          Codes.globalReadsIdentifiable,
          `global model '${node.name}' reads '${up.name}', which holds identifiable practice data (scope tenant, not pseudonymized); read a pseudonymized research relation instead`,
          { file: node.path, line },
        ),
      );
    }
    // A relation built from research rows is research: outside a research schema it would hold
    // every practice's tokens where practice roles read it, ungated (DESIGN §1: population models
    // read pseudonymized relations and are pseudonymized themselves).
    if (node.kind === 'model' && node.scope === 'global' && !node.pseudonymized && up.kind === 'model' && up.pseudonymized) {
      diagnostics.push(
        diagnostic(
          Codes.globalReadsIdentifiable,
          `global model '${node.name}' reads '${up.name}', a pseudonymized research relation, but is not pseudonymized itself (schema '${node.schema}'): a relation built from research rows belongs in a research folder (e.g. models/research/published) or a research schema`,
          { file: node.path, line },
        ),
      );
    }
    // Identities beside tokens outside the vault: a mart with a patient's name and person token
    // is an unaudited copy of the identity map, and with the token a practice finds its
    // patients' visits elsewhere in the research layer. (A global model reads no identities.)
    if (node.kind === 'model' && node.scope === 'tenant' && !node.pseudonymized && (up.kind === 'vault' || (up.kind === 'model' && up.pseudonymized))) {
      diagnostics.push(
        diagnostic(
          Codes.globalReadsIdentifiable,
          `tenant-scoped model '${node.name}' is not pseudonymized but reads '${up.name}', which holds person tokens: identities and tokens meet only in the vault`,
          { file: node.path, line },
        ),
      );
    }
    // A practice's slice is built from that practice's rows: a shared or global relation built
    // from every practice's put the others' into each slice, in batches and alone (red-team,
    // 2026-12-07: every practice's name in each marts slice through a global model over tenants
    // kept in an ops schema). A pseudonymized slice may read the global research relations, by
    // design (a person's records at other practices, by person token): README, research layer.
    const every = node.kind === 'model' && node.scope === 'tenant' && !node.pseudonymized && up.kind === 'model' && up.scope !== 'tenant' ? everyPracticeThrough(dep, nodes) : undefined;
    if (every !== undefined) {
      diagnostics.push(
        diagnostic(
          Codes.batchMixesPractices,
          `tenant-scoped model '${node.name}' reads '${up.name}', a ${up.scope} relation built from every practice's rows (${every}): each practice's slice would hold the others'; read the tenant-scoped relations it is built from`,
          { file: node.path, line },
        ),
      );
    }
    if (node.scope === 'shared' && up.scope !== 'shared') {
      diagnostics.push(
        diagnostic(Codes.sharedReadsTenant, `shared model '${node.name}' reads '${up.name}' (scope ${up.scope}); shared models may read only shared relations`, {
          file: node.path,
          line,
        }),
      );
    }
  }
}

/**
 * tenants.yml lists every practice on the platform (names, time zones, SLAs, tags): each practice
 * may see its own row, never the list. A tenant-scoped model reads its own practice's row only; a
 * shared or global model built from `tenants` (directly or through other shared or global models)
 * holds every row, and where practice roles read (policies.yml grants.practice_roles, marts by
 * default) each practice would read the others'.
 */
export function checkPracticeListExposure(
  node: DraftNode,
  nodes: Record<string, DraftNode>,
  practiceSchemas: readonly string[],
  diagnostics: Diagnostic[],
  lineOfRead: (dep: string) => number | undefined,
): void {
  if (node.kind !== 'model' || node.scope === 'tenant' || node.pseudonymized) return;
  if (!practiceSchemas.some((s) => s.toLowerCase() === node.schema.toLowerCase())) return;
  const seen = new Set<string>();
  const fromTenants = (name: string): boolean => {
    if (seen.has(name)) return false;
    seen.add(name);
    const up = nodes[name];
    if (!up || up.scope === 'tenant') return false;
    return up.kind === 'tenants' || up.depends_on.some(fromTenants);
  };
  for (const dep of node.depends_on) {
    if (!fromTenants(dep)) continue;
    const via = nodes[dep]?.kind === 'tenants' ? '' : ` (through '${dep}')`;
    diagnostics.push(
      diagnostic(
        Codes.globalReadsIdentifiable,
        `${node.scope} model '${node.name}' is built from every practice's row of tenants${via} and lands in schema '${node.schema}', which practice roles read: each practice would see the others' names and settings; make it scope tenant (each practice then reads its own row) or put it where practice roles do not read`,
        { file: node.path, line: lineOfRead(dep) ?? 1 },
      ),
    );
    return;
  }
}

/**
 * How a shared or global relation comes to hold every practice's rows, if it does: it reads,
 * itself or through other shared or global relations, tenants.yml's relation or a tenant-scoped
 * one (a research relation over pseudonymized slices). Undefined when it does not.
 */
function everyPracticeThrough(name: string, nodes: Record<string, DraftNode>, seen = new Set<string>()): string | undefined {
  if (seen.has(name)) return undefined;
  seen.add(name);
  for (const dep of nodes[name]?.depends_on ?? []) {
    const up = nodes[dep];
    if (!up) continue;
    if (up.kind === 'tenants') return "tenants.yml's relation";
    if (up.scope === 'tenant') return `'${up.name}', tenant-scoped`;
    const deeper = everyPracticeThrough(dep, nodes, seen);
    if (deeper !== undefined) return deeper;
  }
  return undefined;
}
