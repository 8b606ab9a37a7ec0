import type { Clock } from '../clock.ts';
import type { Adapter } from '../adapters/adapter.ts';
import type { Manifest } from '../artifacts/manifest.ts';
import type { NodeResult } from '../artifacts/run-results.ts';
import type { Plan, PlanStep } from '../plan/plan.ts';
import type { Project } from '../project/types.ts';
import type { SchedulerSnapshot } from '../schedule/index.ts';
import type { PolicyContext } from './apply-policies.ts';
import { csvRunLoads, type CsvRunLoads } from './csv-run-loads.ts';
import { executePlan } from './runner.ts';
import { defaultStrategies } from './strategies/index.ts';
import type { StrategyRegistry } from './strategy.ts';
import { resolveVaultKey } from './vault.ts';

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

export interface ExecuteRequest {
  /** The run's clock (vault timestamps). */
  clock: Clock;
  plan: Plan;
  adapter: Adapter;
  manifest: Manifest;
  project: Project;
  threads: number;
  fullRefresh: boolean;
  /** A distributed refresh over every practice that this run's jobs take part in (full-refresh.ts). */
  fullRefreshId?: string;
  policy?: PolicyContext;
  /** Overrides `run.node_timeout_seconds`. */
  nodeTimeoutMs?: number;
  onTaskEnd?: (step: PlanStep, results: NodeResult[], progress: SchedulerSnapshot) => void;
  /** Aborted: nothing new starts; what has not run reports `interrupted` (runner.ts). */
  signal?: AbortSignal;
  /** Environment variables (the vault key may come from one); cli/ reads them. */
  env: Readonly<Record<string, string | undefined>>;
  /** How each kind of node is built; default: execute/'s own strategies (no capture). */
  strategies?: StrategyRegistry;
}

/** Runs a plan against one adapter. */
export async function execute(req: ExecuteRequest): Promise<NodeResult[]> {
  const csvLoads = csvRunLoads({
    adapter: req.adapter,
    projectRoot: req.project.root,
    metaSchema: req.project.config.schemas.meta,
    tenantColumn: req.project.config.tenantColumn,
    runTenants: new Set(req.plan.batches.flat()),
    knownTenants: new Set(req.project.tenants.map((t) => t.id)),
  });
  try {
    return await executeWith(req, csvLoads);
  } finally {
    await csvLoads.dropAll();
  }
}

function executeWith(req: ExecuteRequest, csvLoads: CsvRunLoads): Promise<NodeResult[]> {
  return executePlan({
    plan: req.plan,
    threads: req.threads,
    retries: req.project.config.retries,
    pools: req.project.config.pools,
    onTaskEnd: req.onTaskEnd,
    signal: req.signal,
    strategies: req.strategies ?? defaultStrategies(),
    ctx: {
      adapter: req.adapter,
      manifest: req.manifest,
      projectRoot: req.project.root,
      metaSchema: req.project.config.schemas.meta,
      tenantColumn: req.project.config.tenantColumn,
      tenants: req.project.tenants,
      fullRefresh: req.fullRefresh,
      fullRefreshId: req.fullRefreshId,
      policy: req.policy,
      nodeTimeoutMs: req.nodeTimeoutMs ?? req.project.config.nodeTimeoutMs,
      privacy: req.project.config.privacy,
      researchSchema: req.project.config.schemas.research,
      csvLoads,
      vaultKey: req.project.config.privacy ? once(() => resolveVaultKey({ adapter: req.adapter, vaultSchema: req.project.config.schemas.vault, privacy: req.project.config.privacy!, env: req.env, clock: req.clock })) : undefined,
    },
  });
}
