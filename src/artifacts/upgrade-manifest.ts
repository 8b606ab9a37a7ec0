import type { BuiltinNode, Manifest } from './manifest.ts';
import { MANIFEST_SCHEMA_VERSION } from './manifest.ts';

/**
 * A manifest.json of an earlier schema version, as the current version: production state saved
 * before an upgrade of tsform still serves `--state`. Undefined when it is not a tsform
 * manifest this version knows how to read.
 *
 * 1 → 2: the tenants relation and the vault's token map were kept in `seeds`; they move to
 * `builtins`, and the vault names its identity model (its one dependency).
 */
export function upgradeManifest(parsed: unknown): Manifest | undefined {
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const m = parsed as Record<string, unknown>;
  if (typeof m.models !== 'object' || typeof m.seeds !== 'object' || m.seeds === null) return undefined;
  if (m.schema_version === MANIFEST_SCHEMA_VERSION) return parsed as Manifest;
  if (m.schema_version !== 1) return undefined;
  const seeds = { ...(m.seeds as Record<string, { kind?: string; depends_on?: string[] }>) };
  const builtins: Record<string, BuiltinNode> = {};
  for (const [name, node] of Object.entries(seeds)) {
    if (node.kind === 'tenants') builtins[name] = node as BuiltinNode;
    else if (node.kind === 'vault') builtins[name] = { ...(node as BuiltinNode), identity_model: node.depends_on?.[0] ?? '' } as BuiltinNode;
    else continue;
    delete seeds[name];
  }
  return { ...(m as unknown as Manifest), schema_version: MANIFEST_SCHEMA_VERSION, seeds: seeds as Manifest['seeds'], builtins };
}
