import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MANIFEST_SCHEMA_VERSION, type Manifest } from '../artifacts/manifest.ts';
import { upgradeManifest } from '../artifacts/upgrade-manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import { upstreamOf } from '../graph/dag.ts';
import { refuseEphemeralOnly, selectNodes, selectTenants } from '../graph/select.ts';
import { modifiedNodes } from '../graph/state.ts';
import { buildPlan, type Plan } from '../plan/plan.ts';
import { compileWorkspace } from './compile-stage.ts';
import type { RunRequest } from './run-request.ts';
import type { Workspace } from './workspace.ts';

/** The catalog name production is attached as under `--defer`. */
export const DEFER_CATALOG = 'prod';

export function planWorkspace(ws: Workspace, req: Omit<RunRequest, 'projectDir'>, modified?: ReadonlySet<string>): Plan {
  const tenants = selectTenants(ws.project.tenants, req.tenants);
  const selected = selectNodes(ws.dag, req.select, req.exclude, { modified });
  // A pull request may change only an ephemeral model: `state:modified` then selects nothing to build, as CI expects.
  if (!req.select?.some((s) => s.includes('state:'))) refuseEphemeralOnly(ws.dag, selected);
  return buildPlan(ws.manifest, ws.dag, {
    command: req.command,
    selected,
    tenants,
    allTenantCount: ws.project.tenants.length,
    batchSize: ws.project.config.batchSize,
    fullRefresh: req.fullRefresh ?? false,
    fanIn: req.fanIn,
  });
}

/**
 * Compile and plan, with slim CI: `--state` compares with a previous manifest for
 * `state:modified`; `--defer` compiles again so that every unselected upstream relation is read
 * from production.
 */
export function prepareSlimCi(req: RunRequest): { ws: Workspace; plan: Plan; deferDatabase?: string } {
  let ws = compileWorkspace(req.projectDir);
  const modified = req.state ? modifiedNodes(ws.manifest, readStateManifest(req.state)) : undefined;
  let plan = planWorkspace(ws, req, modified);
  if (!req.defer) return { ws, plan };
  if (!req.state) throw new TsformError(Codes.stateManifest, '--defer needs --state <dir> (the production manifest and database)');
  const deferDatabase = resolve(req.deferDatabase ?? join(req.state, 'tsform.duckdb'));
  if (!existsSync(deferDatabase)) throw new TsformError(Codes.stateManifest, `--defer: no production database at ${deferDatabase} (--defer-database <file>)`);
  const selected = selectNodes(ws.dag, req.select, req.exclude, { modified });
  const deferred = new Set([...upstreamOf(ws.dag.graph, selected)].filter((id) => !selected.has(id)));
  ws = compileWorkspace(req.projectDir, { deferred: { nodes: deferred, catalog: DEFER_CATALOG } });
  plan = planWorkspace(ws, req, modified);
  return { ws, plan, deferDatabase };
}

/** `<dir>/manifest.json` of an earlier run, upgraded to this version's schema. */
export function readStateManifest(dir: string): Manifest {
  const path = join(dir, 'manifest.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new TsformError(Codes.stateManifest, `--state: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'invalid JSON'})`);
  }
  const m = upgradeManifest(parsed);
  if (!m) {
    const version = (parsed as { schema_version?: unknown } | null)?.schema_version;
    throw new TsformError(Codes.stateManifest, `--state: ${path} is not a tsform manifest this version reads (schema_version ${String(version)}; this is ${MANIFEST_SCHEMA_VERSION})`);
  }
  return m;
}
