import type { Adapter } from '../adapters/adapter.ts';
import type { OltpSource } from '../adapters/oltp-source.ts';
import { postgresCaptured, type ManifestNode } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import { resolveSpec } from '../ingest/capture-chunk.ts';
import { captureSpecOf, onboardingTenants, RunCapture, type PostgresCapture } from '../ingest/run-capture.ts';
import { findRetiredTenants, type TenantRelation } from '../ingest/purge-tenant.ts';
import { isLoaded, isolateTenants, type Plan } from '../plan/plan.ts';
import type { Project } from '../project/types.ts';
import type { Env } from './env.ts';
import type { Workspace } from './workspace.ts';

export type OpenOltp = (capture: PostgresCapture) => Promise<OltpSource>;

/**
 * The OLTP of a captured source: its URL comes from the environment variable the yml names, never
 * from a file. `threads` streams may each hold a snapshot connection (onboarding on DuckDB) while
 * they commit, and a commit may ask the OLTP one more question (moved rows): two connections
 * beyond them mean a commit never waits for a connection that only a commit can free.
 */
export function openOltpFromEnv(env: Env, threads = 2): OpenOltp {
  return (capture) => openOltp(capture, env, threads + 2);
}

async function openOltp(capture: PostgresCapture, env: Env, poolSize: number): Promise<OltpSource> {
  const url = env[capture.url_env];
  if (!url) throw new TsformError(Codes.missingEnv, `captured sources read the OLTP URL from $${capture.url_env}, which is not set`);
  const { PgOltpSource } = await import('../adapters/postgres/pg-oltp-source.ts');
  return PgOltpSource.open(url, { poolSize });
}

/** A RunCapture when the plan builds a captured source, else undefined (the demo's CSV path needs no OLTP). */
export function runCaptureFor(ws: Workspace, plan: Plan, warehouse: Adapter, open: OpenOltp | undefined, env: Env, threads?: number): RunCapture | undefined {
  if (!plan.steps.some((s) => s.build && ws.manifest.sources[s.id]?.capture)) return undefined;
  return new RunCapture({
    warehouse,
    projectRoot: ws.project.root,
    metaSchema: ws.project.config.schemas.meta,
    tenantColumn: ws.project.config.tenantColumn,
    knownTenants: ws.project.tenants.map((t) => t.id),
    runTenants: plan.tenants,
    openOltp: open ?? openOltpFromEnv(env, threads),
    projectName: ws.project.config.name,
    logicalNodes: postgresCaptured(ws.manifest).filter((n) => n.capture.mode === 'logical'),
  });
}

/**
 * The plan with practices being onboarded (never captured, while others were) each alone in
 * its own batch: their first capture is their whole history, which their batch-mates'
 * downstream would otherwise wait for.
 */
export async function isolateOnboarding(ws: Workspace, plan: Plan, warehouse: Adapter): Promise<{ plan: Plan; onboarding: string[] }> {
  const planned = new Set(plan.steps.map((s) => s.id));
  const labels = postgresCaptured(ws.manifest)
    .filter((n) => planned.has(n.name))
    .map((n) => resolveSpec(captureSpecOf(n, n.capture, ws.project.config.tenantColumn)).label);
  const onboarding = await onboardingTenants(warehouse, ws.project.config.schemas.meta, labels, plan.tenants);
  return { plan: isolateTenants(plan, onboarding), onboarding: [...onboarding].sort() };
}

/** Offboarded practices still in the warehouse, each with the command that removes them. */
export async function retiredTenantNotices(warehouse: Adapter, project: Project): Promise<string[]> {
  const retired = await findRetiredTenants(warehouse, project.config.schemas.meta, project.tenants.map((t) => t.id));
  return retired.map(
    (t) => `practice ${t} is no longer in tenants.yml: nothing captures or builds it any more, but its rows are still in the warehouse; delete them with: tsform purge --tenant ${t} --yes`,
  );
}

/** Every relation that holds practice rows: captured and loaded sources, tenant-scoped tables, the vault's token map. */
export function tenantRelations(nodes: Record<string, ManifestNode>): TenantRelation[] {
  return Object.values(nodes)
    .filter((n) => n.scope === 'tenant' && n.materialized !== 'view' && n.materialized !== 'ephemeral')
    // A source without a loader is someone else's table, read where it is: never purged here.
    .filter((n) => n.kind !== 'source' || isLoaded(n))
    .map((n) => ({ schema: n.schema, identifier: n.identifier }));
}
