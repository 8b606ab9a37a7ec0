import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Adapter } from '../adapters/adapter.ts';
import { MANIFEST_SCHEMA_VERSION, type Manifest } from '../artifacts/manifest.ts';
import { RUN_RESULTS_SCHEMA_VERSION, summarizeTenants, type NodeResult, type RunResults } from '../artifacts/run-results.ts';
import { writeManifest, writeRunResults } from '../artifacts/write.ts';
import { compileProject, type CompileOptions } from '../compile/compile.ts';
import { systemClock, type Clock } from '../clock.ts';
import { Codes, diagnostic, DiagnosticsError, hasErrors, TransientError, TsformError, type Diagnostic } from '../errors.ts';
import { execute } from '../execute/index.ts';
import type { PolicyContext } from '../execute/apply-policies.ts';
import { readRunHistory, readTenantState, recordRunHistory, writeTenantState } from '../execute/state-store.ts';
import { AlertDispatcher, createAlertSinks, DEFAULT_ALERT_SINKS, DurationProfile, readAlertConfig, slaDeadline, type AlertSinkConfig } from '../sla/index.ts';
import { RunMonitor } from '../sla/run-monitor.ts';
import { resolveProtectedRelations, type ProtectedRelation } from '../security/protected-relations.ts';
import { checkPseudonymizedLineage } from '../security/phi-gate.ts';
import { createPolicyRenderer, policyRoleDiagnostics } from '../security/render-rls.ts';
import { buildDag, upstreamOf, type ModelDag } from '../graph/dag.ts';
import { modifiedNodes } from '../graph/state.ts';
import { selectNodes, selectTenants } from '../graph/select.ts';
import { buildPlan, type Command, type FanInPolicy, type Plan } from '../plan/plan.ts';
import { loadProject } from '../project/load-project.ts';
import type { PlanStep } from '../plan/plan.ts';
import type { PrivacyConfig, Project, TargetConfig } from '../project/types.ts';
import { scanForLeaks } from '../execute/privacy-gates.ts';
import { LOCK_WAIT_POLICY, retrying, type SchedulerSnapshot } from '../schedule/index.ts';
import { isolateOnboarding, retiredTenantNotices, runCaptureFor, type OpenOltp } from './capture-wiring.ts';

/** The programmatic API behind the CLI; tests call it directly. */

export interface Workspace {
  project: Project;
  manifest: Manifest;
  dag: ModelDag;
  /** Relations that get row-level security (empty without policies/policies.yml). */
  protectedRelations: ProtectedRelation[];
  /** Alert sinks of tsform.yml (`alerts:`); none configured means log only. */
  alertSinks: AlertSinkConfig[];
  diagnostics: Diagnostic[];
  targetDir: string;
}

/** Reads and compiles a project; throws DiagnosticsError with every user error at once. */
export function compileWorkspace(projectDir: string, opts: { write?: boolean } & CompileOptions = {}): Workspace {
  return compileLoadedProject(loadProject(projectDir), opts);
}

/** compileWorkspace over a project already read (tests build hostile projects in memory). */
export function compileLoadedProject(project: Project, opts: { write?: boolean } & CompileOptions = {}): Workspace {
  const { manifest, diagnostics } = compileProject(project, opts);
  if (hasErrors(diagnostics)) throw new DiagnosticsError(diagnostics);
  const built = buildDag(manifest);
  if (!built.dag) throw new DiagnosticsError([...diagnostics, ...built.diagnostics]);
  const protection = project.policies ? resolveProtectedRelations(manifest, project.policies) : { relations: [], diagnostics: [] };
  if (project.policies) protection.diagnostics.push(...policyRoleDiagnostics(project.policies, project.tenants));
  if (hasErrors(protection.diagnostics)) throw new DiagnosticsError([...diagnostics, ...protection.diagnostics]);
  const lineage = checkPseudonymizedLineage(manifest, built.dag.order);
  if (hasErrors(lineage)) throw new DiagnosticsError([...diagnostics, ...lineage]);
  const alertConfig = readAlertConfig(project.config.alerts?.raw);
  if (alertConfig.errors.length > 0) {
    throw new DiagnosticsError(alertConfig.errors.map((m) => diagnostic(Codes.yamlShape, m, { file: 'tsform.yml', line: project.config.alerts?.line })));
  }
  const targetDir = join(project.root, 'target');
  if (opts.write !== false) writeManifest(targetDir, manifest);
  return { project, manifest, dag: built.dag, diagnostics: [...diagnostics, ...protection.diagnostics], targetDir, protectedRelations: protection.relations, alertSinks: alertConfig.sinks };
}

export interface RunRequest {
  projectDir: string;
  command: Command;
  target?: string;
  select?: string[];
  exclude?: string[];
  tenants?: string[];
  threads?: number;
  fullRefresh?: boolean;
  fanIn?: FanInPolicy;
  nodeTimeoutMs?: number;
  onTaskEnd?: (step: PlanStep, results: NodeResult[], progress: SchedulerSnapshot) => void;
  onPlan?: (plan: Plan) => void;
  /** Use this adapter instead of opening the target's (tests). */
  adapter?: Adapter;
  /** Where `type: log` alerts are written (default stderr). */
  alertLog?: { write(line: string): unknown };
  /** Told when another tsform process holds the warehouse and this run waits for it. */
  onLockWait?: (holder: string) => void;
  /** `--state <dir>`: the previous manifest.json that `state:modified` compares against. */
  state?: string;
  /** `--defer`: read unselected upstream relations from production (`<state>/tsform.duckdb`). */
  defer?: boolean;
  deferDatabase?: string;
  /** The run's one clock: run timestamps, history window, loaded-through dates, SLA, alerts, vault, lock waits. Default: the system clock. */
  clock?: Clock;
  /** Opens the OLTP of captured sources (default: the URL in the source's `url_env`); tests inject faults here. */
  openOltp?: OpenOltp;
}

export function resolveTarget(project: Project, name?: string): TargetConfig {
  const targetName = name ?? project.config.defaultTarget;
  const target = project.config.targets[targetName];
  if (!target) {
    throw new TsformError(Codes.unknownTarget, `unknown target '${targetName}' (tsform.yml declares: ${Object.keys(project.config.targets).join(', ') || 'none'})`, { file: 'tsform.yml' });
  }
  return target;
}

export async function openAdapter(
  project: Project,
  target: TargetConfig,
  threads?: number,
  onLockWait?: (holder: string) => void,
  readOnly?: Record<string, string>,
): Promise<Adapter> {
  switch (target.type) {
    case 'duckdb': {
      const at = (p: string) => (isAbsolute(p) ? p : join(project.root, p));
      // Loaded on demand: compile and ls never need a database driver in memory.
      const { DuckDBAdapter } = await import('../adapters/duckdb/duckdb-adapter.ts');
      return DuckDBAdapter.open({
        path: at(target.path),
        connections: threads ?? target.threads,
        onWait: onLockWait,
        attach: { [project.config.schemas.research]: at(target.researchPath), [project.config.schemas.vault]: at(target.vaultPath) },
        attachReadOnly: readOnly,
      });
    }
    case 'postgres': {
      const url = process.env[target.urlEnv];
      if (!url) throw new TsformError(Codes.missingEnv, `target '${target.name}' reads its connection URL from $${target.urlEnv}, which is not set`);
      const { createPostgresAdapter } = await import('../adapters/postgres/postgres-adapter.ts');
      // One connection more than the statements in flight: it holds the run's practice locks.
      return createPostgresAdapter({ url, poolSize: (threads ?? target.threads) + 1, applicationName: 'tsform' });
    }
    default: {
      const never: never = target;
      throw new Error(`unknown target type ${JSON.stringify(never)}`);
    }
  }
}

export function planWorkspace(ws: Workspace, req: Omit<RunRequest, 'projectDir'>, modified?: ReadonlySet<string>): Plan {
  const tenants = selectTenants(ws.project.tenants, req.tenants);
  const selected = selectNodes(ws.dag, req.select, req.exclude, { modified });
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

const DEFER_CATALOG = 'prod';

/**
 * Slim CI: `--state` compares with a previous manifest for `state:modified`; `--defer` compiles
 * again so that every unselected upstream relation is read from production.
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

export function readStateManifest(dir: string): Manifest {
  const path = join(dir, 'manifest.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new TsformError(Codes.stateManifest, `--state: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'invalid JSON'})`);
  }
  const m = parsed as Partial<Manifest>;
  if (m.schema_version !== MANIFEST_SCHEMA_VERSION || typeof m.models !== 'object') {
    throw new TsformError(Codes.stateManifest, `--state: ${path} is not a tsform manifest (schema_version ${String(m.schema_version)})`);
  }
  return m as Manifest;
}

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

/** The leak scan as a node result: it fails the run when any research value holds an identifier. */
async function leakScanResult(adapter: Adapter, ws: Workspace, privacy: PrivacyConfig): Promise<NodeResult> {
  const started = performance.now();
  const findings = await scanForLeaks(adapter, ws.manifest, privacy);
  return {
    node: 'privacy:leak_scan',
    model: 'privacy:leak_scan',
    tenant: null,
    kind: 'test',
    status: findings.length > 0 ? 'error' : 'success',
    rows: findings.reduce((n, f) => n + f.rows, 0),
    duration_ms: Math.round(performance.now() - started),
    message:
      findings.length > 0
        ? `raw direct identifiers found in research data: ${findings.map((f) => `${f.relation}.${f.column} (${f.rows} rows)`).join(', ')}`
        : null,
    ...(findings.length > 0 ? { code: Codes.privacyGate } : {}),
  };
}

/** compile → plan → execute → run_results.json + run history. */
export async function runWorkspace(req: RunRequest): Promise<RunResults> {
  const slim = prepareSlimCi(req);
  const { ws } = slim;
  let plan = slim.plan;
  const target = resolveTarget(ws.project, req.target);
  req.onPlan?.(plan);
  if (slim.deferDatabase && target.type !== 'duckdb') {
    throw new TsformError(Codes.unsupported, '--defer reads production from a DuckDB file; on PostgreSQL it is not supported yet');
  }
  const adapter = req.adapter ?? (await openAdapter(ws.project, target, req.threads, req.onLockWait, slim.deferDatabase ? { [DEFER_CATALOG]: slim.deferDatabase } : undefined));
  const clock = req.clock ?? systemClock;
  const startedAt = clock.now();
  const runId = randomUUID();
  let locks: Awaited<ReturnType<typeof lockPractices>>;
  const capture = runCaptureFor(ws, plan, adapter, req.openOltp);
  try {
    const notices: string[] = [];
    if (capture) {
      const isolated = await isolateOnboarding(ws, plan, adapter);
      plan = isolated.plan;
      if (isolated.onboarding.length > 0) notices.push(`onboarding ${isolated.onboarding.length} practice(s), each captured alone in its own batch: ${isolated.onboarding.join(', ')}`);
    }
    locks = await lockPractices(adapter, plan.tenants, req.onLockWait);
    const meta = ws.project.config.schemas.meta;
    const selectedTenants = ws.project.tenants.filter((t) => plan.tenants.includes(t.id));
    const sinks = createAlertSinks(ws.alertSinks.length > 0 ? ws.alertSinks : DEFAULT_ALERT_SINKS, { log: req.alertLog ?? { write: () => true }, clock });
    const dispatcher = new AlertDispatcher(sinks.sinks);
    const monitor = new RunMonitor({
      runId,
      tenants: selectedTenants,
      models: plan.steps.filter((s) => s.fanOut && s.build).map((s) => s.id),
      profile: DurationProfile.fromHistory(await readRunHistory(adapter, meta, clock)),
      state: await readTenantState(adapter, meta),
      dispatcher,
      clock,
    });
    await monitor.start();
    let monitoring = Promise.resolve();
    const results = await execute({
      plan,
      adapter,
      manifest: ws.manifest,
      project: ws.project,
      threads: req.threads ?? target.threads,
      fullRefresh: req.fullRefresh ?? false,
      policy: adapter.capabilities.rowLevelSecurity ? policyContext(ws) : undefined,
      nodeTimeoutMs: req.nodeTimeoutMs,
      clock,
      capture: capture?.captureNode,
      onTaskEnd: (step, results, progress) => {
        monitoring = monitoring.then(() => monitor.onResults(results));
        req.onTaskEnd?.(step, results, progress);
      },
    });
    await monitoring;
    const privacy = ws.project.config.privacy;
    const builtResearch = plan.steps.some((s) => s.build && ws.manifest.models[s.id]?.pseudonymized);
    if (privacy && builtResearch) results.push(await leakScanResult(adapter, ws, privacy));
    notices.push(...(capture?.runNotices() ?? []), ...(await retiredTenantNotices(adapter, ws.project)));
    const finishedAt = clock.now();
    const run: RunResults = {
      schema_version: RUN_RESULTS_SCHEMA_VERSION,
      run_id: runId,
      command: req.command,
      target: target.name,
      started_at: startedAt.toISOString(),
      finished_at: finishedAt.toISOString(),
      elapsed_ms: finishedAt.getTime() - startedAt.getTime(),
      results,
      tenants: summarizeTenants(results, plan.tenants),
      alerts: dispatcher.raised.map((a) => ({ kind: a.kind, tenant: a.tenant.id, message: a.message })),
      ...(notices.length > 0 ? { notices } : {}),
    };
    writeRunResults(ws.targetDir, run);
    await recordRunHistory(adapter, meta, run);
    // A full run that succeeded for a practice loads it through its local yesterday (T+1).
    if (req.command !== 'test' && req.command !== 'seed' && !req.select?.length && !req.exclude?.length) {
      await writeTenantState(
        adapter,
        meta,
        selectedTenants
          .filter((t) => run.tenants[t.id]?.status === 'success')
          .map((t) => ({ tenant: t.id, loadedThrough: slaDeadline(t, startedAt).dataDate, lastSuccessAt: finishedAt.toISOString(), runId })),
      );
    }
    return run;
  } finally {
    await capture?.close();
    await locks?.release();
    if (!req.adapter) await adapter.close();
  }
}

/**
 * Per-practice locks for the whole run (PostgreSQL): another run holding one of these practices
 * is waited for, and named, so two processes never write one practice at once.
 */
async function lockPractices(adapter: Adapter, tenants: readonly string[], onWait?: (holder: string) => void) {
  const tryLock = adapter.tryLockTenants?.bind(adapter);
  if (!tryLock || tenants.length === 0) return undefined;
  let waitingFor = '';
  // A held practice is a TransientError until the wait runs out, then the run fails with TSF412.
  // A wait is a duration: LOCK_WAIT_POLICY measures it on the monotonic clock, so an injected clock that stands still cannot hang it.
  return retrying(
    async () => {
      const lock = await tryLock(tenants);
      if (lock.held.length === 0) return lock;
      await lock.release();
      const first = lock.held[0]!;
      waitingFor = `practice ${first.tenant} and ${lock.held.length - 1} more held by ${first.holder}`;
      throw new TransientError(`practice ${first.tenant} (and ${lock.held.length - 1} more) is being written by another tsform run (${first.holder}); gave up waiting`, Codes.tenantLocked);
    },
    {
      policy: LOCK_WAIT_POLICY,
      classify: (err) => adapter.classifyError(err),
      onRetry: (_err, retry) => {
        if (retry === 1) onWait?.(waitingFor);
      },
    },
  );
}
