import { manifestNodes } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import { purgeTenant, type PurgeCount } from '../ingest/purge-tenant.ts';
import { TENANT_ID_PATTERN } from '../project/types.ts';
import { compileWorkspace, openAdapter, resolveTarget } from './api.ts';
import { tenantRelations } from './capture-wiring.ts';

/**
 * Offboarding: a practice removed from tenants.yml keeps its rows until this deletes them from
 * every tenant-scoped relation tsform writes, plus its watermarks and run state. A practice still
 * in tenants.yml is refused (the next run would capture it again).
 */
export async function purgeCommand(projectDir: string, target: string | undefined, tenantArgs: string[], yes: boolean): Promise<PurgeCount[]> {
  const ids = tenantArgs.flatMap((a) => a.split(',')).map((a) => a.trim()).filter(Boolean);
  if (ids.length !== 1) throw new TsformError(Codes.badTenantArgument, 'purge takes exactly one --tenant <id>');
  const tenant = ids[0]!;
  if (!TENANT_ID_PATTERN.test(tenant)) throw new TsformError(Codes.badTenantArgument, `--tenant ${JSON.stringify(tenant)} is not a valid practice id`);
  const ws = compileWorkspace(projectDir, { write: false });
  if (ws.project.tenants.some((t) => t.id === tenant)) {
    throw new TsformError(Codes.badTenantArgument, `practice ${tenant} is still in tenants.yml: remove it there first, or the next run captures it again`, { file: 'tenants.yml' });
  }
  const adapter = await openAdapter(ws.project, resolveTarget(ws.project, target));
  try {
    const { schemas } = ws.project.config;
    return await purgeTenant(adapter, {
      tenant,
      relations: tenantRelations(manifestNodes(ws.manifest)),
      tenantColumn: ws.project.config.tenantColumn,
      metaSchema: schemas.meta,
      separateSchemas: [schemas.research, schemas.vault],
      dryRun: !yes,
    });
  } finally {
    await adapter.close();
  }
}
