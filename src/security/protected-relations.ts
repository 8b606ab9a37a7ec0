import { manifestNodes, type Manifest } from '../artifacts/manifest.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import type { PolicyConfig } from '../project/types.ts';

/** A relation that must carry row-level security in the warehouse. */
export interface ProtectedRelation {
  /** Manifest node id. */
  node: string;
  schema: string;
  identifier: string;
  kind: 'table' | 'view';
}

/**
 * Every practice-scoped relation a person could query: tenant-scoped nodes (not ephemeral) in
 * the protected schemas, plus relations named in policies.yml. Pure; mistakes are diagnostics.
 */
export function resolveProtectedRelations(
  manifest: Manifest,
  policies: PolicyConfig,
): { relations: ProtectedRelation[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const nodes = manifestNodes(manifest);
  const out = new Map<string, ProtectedRelation>();
  const add = (id: string) => {
    const n = nodes[id]!;
    out.set(id, { node: id, schema: n.schema, identifier: n.identifier, kind: n.materialized === 'view' ? 'view' : 'table' });
  };
  for (const [id, n] of Object.entries(nodes)) {
    if (n.scope === 'tenant' && n.materialized !== 'ephemeral' && policies.protectSchemas.includes(n.schema)) add(id);
  }
  for (const ref of policies.protectRelations) {
    const id = Object.keys(nodes).find((k) => k === ref.name || `${nodes[k]!.schema}.${nodes[k]!.identifier}` === ref.name);
    const at = { file: policies.file, line: ref.line };
    if (!id) {
      diagnostics.push(diagnostic(Codes.unknownPolicyRelation, `policy names unknown relation '${ref.name}'`, at));
      continue;
    }
    const n = nodes[id]!;
    const declared = Object.keys(n.columns);
    if (n.scope !== 'tenant' || (declared.length > 0 && !declared.includes(manifest.tenant_column))) {
      diagnostics.push(
        diagnostic(Codes.policyWithoutTenantColumn, `policy names '${ref.name}', which has no ${manifest.tenant_column} column (scope ${n.scope}); row-level security needs it`, at),
      );
      continue;
    }
    if (n.materialized === 'ephemeral') {
      diagnostics.push(diagnostic(Codes.unknownPolicyRelation, `policy names '${ref.name}', an ephemeral model (not a relation in the warehouse)`, at));
      continue;
    }
    add(id);
  }
  // A schema practice roles may read must not hold an unprotected practice relation.
  for (const [id, n] of Object.entries(nodes)) {
    if (n.scope === 'tenant' && n.materialized !== 'ephemeral' && policies.practiceSchemas.includes(n.schema) && !out.has(id)) {
      diagnostics.push(
        diagnostic(Codes.unknownPolicyRelation, `practice roles may read schema '${n.schema}', but '${id}' there is not protected; add the schema to protect.schemas`, {
          file: policies.file,
        }),
      );
    }
  }
  return { relations: [...out.values()].sort((a, b) => a.node.localeCompare(b.node)), diagnostics };
}
