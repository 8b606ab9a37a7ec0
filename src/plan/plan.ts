import { manifestNodes, unknownNode, type Manifest, type ManifestNode, type SourceNode } from '../artifacts/manifest.ts';
import { downstreamOf, type ModelDag } from '../graph/dag.ts';
import type { Tenant } from '../project/types.ts';

export type Command = 'run' | 'seed' | 'test' | 'build';

/** What a global node does when some practices' upstream failed this run (DESIGN §6). */
export type FanInPolicy = 'use_last_good' | 'skip' | 'block';

/** One relation to build (or test) this run. Plain data: the runner executes it and `tsform ls` prints it. */
export interface PlanStep {
  id: string;
  kind: ManifestNode['kind'];
  scope: ManifestNode['scope'];
  materialized: ManifestNode['materialized'];
  /** Runs once per batch of practices (tenant-scoped tables, incremental models, sources). */
  fanOut: boolean;
  /** One practice per statement (incremental: each practice has its own high-water mark). */
  singleTenant: boolean;
  /** Build it, or only run its tests (in `test`, relations are read as they are). */
  build: boolean;
  /** Steps of this plan that must finish first. */
  upstream: string[];
  tests: string[];
}

export interface Plan {
  command: Command;
  steps: PlanStep[];
  /** Selected practices, sorted by id (storage stays ordered by practice; notes/duckdb-fanout.md). */
  tenants: string[];
  /** Practices that share statements; large practices are alone in theirs. */
  batches: string[][];
  /** The pool of each batch (a batch never mixes pools). */
  batchPools: string[];
  fullRefresh: boolean;
  /**
   * With --full-refresh: `all` practices are selected, so per-practice tables are dropped and
   * rebuilt (their shape may change); `selected` (a sample): only those practices' slices are
   * rebuilt from the full SELECT in the table as it is, every other practice's rows untouched.
   */
  fullRefreshScope?: 'all' | 'selected';
  fanIn: FanInPolicy;
  /** (model × practice) nodes plus global nodes. */
  nodeCount: number;
}

export interface PlanOptions {
  command: Command;
  selected: Set<string>;
  tenants: Tenant[];
  allTenantCount: number;
  batchSize: number;
  fullRefresh: boolean;
  /**
   * `selected` whatever practices are chosen: a distributed full refresh's job, whose coordinator
   * dropped the tables once before any job (a job of all practices must not drop them again).
   */
  fullRefreshScope?: 'selected';
  fanIn?: FanInPolicy;
}

/** Practices tagged `large` run alone; the rest in batches of `batchSize` per pool, in id order. */
export function batchTenants(tenants: readonly Tenant[], batchSize: number): string[][] {
  return batchTenantsByPool(tenants, batchSize).map((b) => b.tenants);
}

export function batchTenantsByPool(tenants: readonly Tenant[], batchSize: number): { tenants: string[]; pool: string }[] {
  const sorted = [...tenants].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const batches: { tenants: string[]; pool: string }[] = [];
  const open = new Map<string, string[]>();
  for (const t of sorted) {
    if (t.tags.includes('large')) {
      batches.push({ tenants: [t.id], pool: t.pool });
      continue;
    }
    let current = open.get(t.pool);
    if (!current) open.set(t.pool, (current = []));
    current.push(t.id);
    if (current.length >= batchSize) {
      batches.push({ tenants: current, pool: t.pool });
      open.delete(t.pool);
    }
  }
  for (const [pool, current] of open) batches.push({ tenants: current, pool });
  // In id order overall, so that slices land in the order storage is sorted by (notes/duckdb-fanout.md).
  return batches.sort((a, b) => (a.tenants[0]! < b.tenants[0]! ? -1 : 1));
}

/**
 * The same plan with these practices out of their batches, each alone in its own (same pool):
 * a practice being onboarded captures its whole history, and its batch-mates' downstream would
 * wait for it. Pure.
 */
export function isolateTenants(plan: Plan, alone: ReadonlySet<string>): Plan {
  if (alone.size === 0) return plan;
  const pooled: { tenants: string[]; pool: string }[] = [];
  plan.batches.forEach((batch, i) => {
    const pool = plan.batchPools[i]!;
    const rest = batch.filter((t) => !alone.has(t));
    for (const t of batch) if (alone.has(t) && batch.length > 1) pooled.push({ tenants: [t], pool });
    if (rest.length > 0 || batch.length === 1) pooled.push({ tenants: batch.length === 1 ? batch : rest, pool });
  });
  pooled.sort((a, b) => (a.tenants[0]! < b.tenants[0]! ? -1 : 1));
  return { ...plan, batches: pooled.map((b) => b.tenants), batchPools: pooled.map((b) => b.pool) };
}

/**
 * A tenant-scoped relation is built per batch of practices; global and shared ones, and a view
 * (one statement over every practice's rows), run once.
 */
export function fansOut(node: Pick<ManifestNode, 'scope' | 'materialized'>): boolean {
  return node.scope === 'tenant' && node.materialized !== 'view';
}

/** A source with a loader is built by tsform; one without is read where it is. */
export function isLoaded(node: SourceNode): boolean {
  return node.csv_path !== undefined || node.capture !== undefined;
}

/**
 * Each practice needs its own high-water mark: one per statement, unless the model's filter is
 * correlated on the tenant column (batch_incremental). A captured source is one extract per
 * practice, from that practice's own watermark.
 */
function oneStatementPerPractice(node: ManifestNode): boolean {
  switch (node.kind) {
    case 'model':
      return node.materialized === 'incremental' && !node.batch_incremental;
    case 'source':
      return node.capture !== undefined;
    case 'seed':
    case 'tenants':
    case 'vault':
      return false;
    default:
      return unknownNode(node);
  }
}

/** Manifest + selection → Plan. Pure. */
export function buildPlan(manifest: Manifest, dag: ModelDag, opts: PlanOptions): Plan {
  const nodes = manifestNodes(manifest);
  const testsByNode = new Map<string, string[]>();
  for (const t of Object.values(manifest.tests)) {
    if (!opts.selected.has(t.attached_to)) continue;
    const list = testsByNode.get(t.attached_to) ?? [];
    list.push(t.name);
    testsByNode.set(t.attached_to, list);
  }

  const steps: PlanStep[] = [];
  const inPlan = new Set<string>();
  for (const id of dag.order) {
    if (!opts.selected.has(id)) continue;
    const node = nodes[id]!;
    if (node.materialized === 'ephemeral') continue;
    const isSeed = node.kind === 'seed' || node.kind === 'tenants';
    // `run` loads seeds too: they are versioned files, cheap to load, and a model reading a seed
    // that was never loaded would fail on a fresh warehouse.
    const build = opts.command === 'seed' ? isSeed : opts.command !== 'test';
    const tests = opts.command === 'test' || opts.command === 'build' ? (testsByNode.get(id) ?? []) : [];
    if (!build && tests.length === 0) continue;
    // A source without a loader is read where it is; it is only a step when it has tests.
    const buildable = build && (node.kind !== 'source' || isLoaded(node));
    if (!buildable && tests.length === 0) continue;
    const fanOut = fansOut(node);
    steps.push({
      id,
      kind: node.kind,
      scope: node.scope,
      materialized: node.materialized,
      fanOut,
      singleTenant: oneStatementPerPractice(node),
      build: buildable,
      upstream: [],
      tests,
    });
    inPlan.add(id);
  }

  // Upstream edges between planned steps, looking through unplanned nodes (ephemerals, unselected).
  const memo = new Map<string, string[]>();
  const plannedAncestors = (id: string): string[] => {
    const cached = memo.get(id);
    if (cached) return cached;
    const out = new Set<string>();
    for (const dep of nodes[id]?.depends_on ?? []) {
      if (inPlan.has(dep)) out.add(dep);
      else if (nodes[dep]?.materialized === 'ephemeral') for (const a of plannedAncestors(dep)) out.add(a);
    }
    const list = [...out];
    memo.set(id, list);
    return list;
  };
  for (const step of steps) {
    const deps = new Set(plannedAncestors(step.id));
    // A relationships test also waits for the model it points at, unless that model is downstream.
    const testDeps = step.tests.flatMap((t) => manifest.tests[t]!.depends_on).filter((d) => d !== step.id && inPlan.has(d));
    if (testDeps.length > 0) {
      const below = downstreamOf(dag.graph, [step.id]);
      for (const d of testDeps) if (!below.has(d)) deps.add(d);
    }
    step.upstream = [...deps];
  }

  const pooled = batchTenantsByPool(opts.tenants, opts.batchSize);
  const batches = pooled.map((b) => b.tenants);
  const nodeCount = steps.reduce((n, s) => n + (s.fanOut ? opts.tenants.length : 1), 0);
  return {
    command: opts.command,
    steps,
    tenants: opts.tenants.map((t) => t.id).sort(),
    batches,
    batchPools: pooled.map((b) => b.pool),
    fullRefresh: opts.fullRefresh,
    ...(opts.fullRefresh ? { fullRefreshScope: opts.fullRefreshScope ?? (opts.tenants.length < opts.allTenantCount ? ('selected' as const) : ('all' as const)) } : {}),
    fanIn: opts.fanIn ?? 'use_last_good',
    nodeCount,
  };
}
