import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MANIFEST_SCHEMA_VERSION, type Manifest } from '../artifacts/manifest.ts';
import { upgradeManifest } from '../artifacts/upgrade-manifest.ts';
import { writeManifest } from '../artifacts/write.ts';
import { Codes, DiagnosticsError, hasErrors, TsformError } from '../errors.ts';
import { upstreamOf } from '../graph/dag.ts';
import { refuseEphemeralOnly, selectNodes, selectTenants } from '../graph/select.ts';
import { modifiedNodes } from '../graph/state.ts';
import { buildPlan, type Plan } from '../plan/plan.ts';
import { classesLoweredSince } from '../security/declared-classes.ts';
import { compileWorkspace, type WorkspaceOptions } from './compile-stage.ts';
import { refuseResearchFromBeforeDeparture } from './defer-research.ts';
import type { RunRequest } from './run-request.ts';
import type { Workspace } from './workspace.ts';

/** The catalog name production is attached as under `--defer`. */
export const DEFER_CATALOG = 'prod';

/**
 * A run, build, seed or test needs a practice: with tenants.yml missing, `run --full-refresh`
 * dropped every table of the warehouse and rebuilt none (red-team, 2026-12-07). Checked before
 * the warehouse is opened; `ls` and `compile` still work on such a project.
 */
export function refuseNoPractices(ws: Workspace, command: string): void {
  if (ws.project.tenants.length > 0) return;
  throw new TsformError(Codes.noPractices, `tenants.yml lists no practice: a ${command} would build no practice's data; list the practices first`);
}

export function planWorkspace(ws: Workspace, req: Omit<RunRequest, 'projectDir'>, modified?: ReadonlySet<string>, selection?: ReadonlySet<string>): Plan {
  const tenants = selectTenants(ws.project.tenants, req.tenants).filter((t) => !req.capturedTenants || req.capturedTenants.has(t.id));
  const selected = selection ?? selectNodes(ws.dag, req.select, req.exclude, { modified });
  // A pull request may change only an ephemeral model: `state:modified` then selects nothing to build, as CI expects.
  if (!req.select?.some((s) => s.includes('state:'))) refuseEphemeralOnly(ws.dag, selected);
  return buildPlan(ws.manifest, ws.dag, {
    command: req.command,
    selected: new Set(selected),
    tenants,
    allTenantCount: ws.project.tenants.length,
    batchSize: ws.project.config.batchSize,
    fullRefresh: req.fullRefresh ?? false,
    ...(req.fullRefreshSlicesOnly ? { fullRefreshScope: 'selected' as const } : {}),
    fanIn: req.fanIn,
  });
}

export interface SlimCi {
  ws: Workspace;
  plan: Plan;
  /** The production database `--defer` reads, when it has one. */
  deferDatabase?: string;
  /** The nodes read from it. */
  deferred?: ReadonlySet<string>;
  /** What the run should say about how it read production (e.g. no database: built instead). */
  notices: string[];
}

/**
 * Compile and plan, with slim CI: `--state` compares with a previous manifest for
 * `state:modified`; `--defer` compiles again so that every relation the selected nodes and their
 * tests read, and that is not selected, comes from production (`<state>/tsform.duckdb`: the
 * production workflow publishes the manifest and the database as one artifact). A state folder
 * with only the manifest still selects by state; what would have been deferred is built here
 * instead, with one notice.
 */
export function prepareSlimCi(req: RunRequest): SlimCi {
  const production = req.state ? readStateManifest(req.state) : undefined;
  let ws = compileAgainst(req.projectDir, { vars: req.vars, targetPath: req.targetPath }, production);
  const modified = production ? modifiedNodes(ws.manifest, production) : undefined;
  if (req.nodes) return { ws, plan: planWorkspace(ws, req, undefined, new Set(req.nodes)), notices: [] };
  if (!req.defer) return { ws, plan: planWorkspace(ws, req, modified), notices: [] };
  if (!req.state) throw new TsformError(Codes.stateManifest, '--defer needs --state <dir> (the production manifest and database)');
  const selected = selectNodes(ws.dag, req.select, req.exclude, { modified });
  const read = readBySelection(ws, selected);
  const deferDatabase = resolve(req.deferDatabase ?? join(req.state, 'tsform.duckdb'));
  if (!existsSync(deferDatabase)) {
    if (req.deferDatabase) throw new TsformError(Codes.stateManifest, `--defer-database: no production database at ${deferDatabase}`);
    const built = new Set([...selected, ...read]);
    const notice = `--defer: ${req.state} has no production database (tsform.duckdb), so nothing is read from production: the ${read.size} upstream node(s) the selection reads are built here too`;
    return { ws, plan: planWorkspace(ws, req, modified, built), notices: read.size > 0 ? [notice] : [] };
  }
  if (production) refuseResearchFromBeforeDeparture(ws.manifest, production, read);
  ws = compileWorkspace(req.projectDir, { vars: req.vars, targetPath: req.targetPath, deferred: { nodes: read, catalog: DEFER_CATALOG } });
  return { ws, plan: planWorkspace(ws, req, modified, selected), deferDatabase, deferred: read, notices: [] };
}

/**
 * Nodes outside the selection that the selected nodes or their tests read (a relationships
 * test's seed, a singular test's other model), with their upstream; and, since those are built
 * with their tests when there is no production to read them from, what their tests read too.
 */
function readBySelection(ws: Workspace, selected: ReadonlySet<string>): Set<string> {
  const testsOf = new Map<string, string[]>();
  for (const t of Object.values(ws.manifest.tests)) testsOf.set(t.attached_to, [...(testsOf.get(t.attached_to) ?? []), ...t.depends_on]);
  const wanted = new Set(selected);
  for (let size = -1; size !== wanted.size; ) {
    size = wanted.size;
    for (const id of [...wanted]) for (const d of testsOf.get(id) ?? []) wanted.add(d);
    for (const id of upstreamOf(ws.dag.graph, wanted)) wanted.add(id);
  }
  return new Set([...wanted].filter((id) => !selected.has(id)));
}

/**
 * compileWorkspace, and with production's manifest TSF228: a pull request may not lower a
 * column's class (security/declared-classes.ts). target/manifest.json is written only once that
 * check has passed.
 */
export function compileAgainst(projectDir: string, opts: WorkspaceOptions, production: Manifest | undefined): Workspace {
  const ws = compileWorkspace(projectDir, { ...opts, write: opts.write !== false && !production });
  if (!production) return ws;
  const lowered = classesLoweredSince(ws.project, ws.manifest, production);
  if (hasErrors(lowered)) throw new DiagnosticsError(lowered);
  if (opts.write !== false) writeManifest(ws.targetDir, ws.manifest);
  return ws;
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
