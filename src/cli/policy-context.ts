import type { PolicyContext } from '../execute/apply-policies.ts';
import { createPolicyRenderer } from '../security/render-rls.ts';
import type { Workspace } from './workspace.ts';

/** What the runner and `policies apply` need to protect relations; undefined without policies. */
export function policyContext(ws: Workspace): PolicyContext | undefined {
  const policies = ws.project.policies;
  if (!policies) return undefined;
  return {
    policies,
    renderer: createPolicyRenderer(policies, ws.project.config.tenantColumn, ws.project.config.schemas),
    tenants: ws.project.tenants,
    tenantColumn: ws.project.config.tenantColumn,
    relations: new Map(ws.protectedRelations.map((r) => [r.node, r])),
    vault: ws.project.config.privacy !== undefined,
  };
}
