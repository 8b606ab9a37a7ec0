import { randomUUID } from 'node:crypto';
import { manifestNodes, type ManifestNode } from '../artifacts/manifest.ts';
import type { NodeResult } from '../artifacts/run-results.ts';
import { Codes, TsformError, type Code } from '../errors.ts';
import type { Plan, PlanStep } from '../plan/plan.ts';
import { DEFAULT_RETRY_POLICY, drain, FairScheduler, GLOBAL_LANE, retrying, type SchedulerSnapshot, type SchedulerUnit, type UnitEnd } from '../schedule/index.ts';
import { applyPolicyFoundation } from './apply-policies.ts';
import { migrateMeta } from '../warehouse/meta-schema.ts';
import { forgetNonIncremental } from '../warehouse/relation-versions.ts';
import { movedRowRebuilds } from './moved-row-rebuilds.ts';
import { beginFullRefresh, endFullRefresh, refreshTargets } from './full-refresh.ts';
import type { BuildContext, BuildOutcome, StrategyRegistry } from './strategy.ts';
import { describeNodeError, lineInSql } from './error-location.ts';
import { runDataTest } from './run-tests.ts';
import { interruptedUnits } from './interrupted-units.ts';

export interface RunnerOptions {
  plan: Plan;
  ctx: BuildContext;
  /** How each kind of node is built (strategies/index.ts plus what other layers register). */
  strategies: StrategyRegistry;
  /** Statements in flight at once. */
  threads: number;
  /** Retries of transient failures (write conflicts, lost connections), with backoff. */
  retries?: number;
  /** Slots per pool (tsform.yml `pools`); practices choose their pool in tenants.yml. */
  pools: Record<string, { slots: number }>;
  /** Called after each step × batch finishes, with that task's results. */
  onTaskEnd?: (step: PlanStep, results: NodeResult[], progress: SchedulerSnapshot) => void;
  /**
   * Aborted (Ctrl-C): nothing new starts; every task not yet started reports `interrupted`, so
   * the run still ends with one result per unit. Tasks already running finish (their own
   * transactions commit or roll back whole).
   */
  signal?: AbortSignal;
}

/** One step × batch of practices (or one global step): the unit the fair scheduler dispatches. */
interface Task extends SchedulerUnit {
  key: string;
  step: PlanStep;
  /** Batch index for fanned steps. */
  batch?: number;
}

/**
 * Executes a plan: each tenant-scoped step runs once per batch of practices, global steps once.
 * A failure marks only the failing practice; its downstream is skipped for that practice alone.
 */
export async function executePlan(opts: RunnerOptions): Promise<NodeResult[]> {
  const { plan } = opts;
  // Over every practice, a refresh of its own (full-refresh.ts); --tenant and distributed jobs rebuild slices in place.
  const refresh = plan.fullRefresh && plan.fullRefreshScope !== 'selected' ? randomUUID() : undefined;
  const ctx = refresh ? { ...opts.ctx, fullRefreshId: refresh } : opts.ctx;
  const nodes = manifestNodes(ctx.manifest);
  const results: NodeResult[] = [];
  const stepById = new Map(plan.steps.map((s) => [s.id, s]));
  /** step → practice → why it did not succeed (skips cascade through this map). */
  const failed = new Map<string, Map<string, string>>();
  const onceFailed = new Map<string, string>();
  /** Step run once → practices it read as last built: a step reading it read their old slices too. */
  const staleOnce = new Map<string, string[]>();
  /** Task key → the practices whose build used its time slice with work left (BuildOutcome.workLeft). */
  const continuing = new Map<string, string[]>();
  /** `step|practice` → what its earlier slices did, summed into the one result it gets at the end. */
  const sliced = new Map<string, { rows: number; ms: number; notes: string[] }>();
  /** Step → practices outside its builds whose slices lost rows in them (BuildOutcome.changedElsewhere). */
  const changedElsewhere = new Map<string, Set<string>>();
  await prepareSchemas(ctx, plan, withRetries);
  if (refresh) await beginFullRefresh(ctx.adapter, ctx.metaSchema, refresh, refreshTargets(plan, nodes));

  // Dependency counters between tasks (step × batch). A large practice is its own lane; small
  // practices batched together share one; global steps share the global lane.
  const tasks = new Map<string, Task>();
  const keysOf = (step: PlanStep) => (step.fanOut ? plan.batches.map((_, b) => `${step.id}|${b}`) : [step.id]);
  const globalPool = 'steady' in opts.pools ? 'steady' : Object.keys(opts.pools)[0]!;
  for (const step of plan.steps) {
    keysOf(step).forEach((key, b) => {
      const batch = plan.batches[b]!;
      tasks.set(
        key,
        step.fanOut
          ? { id: key, key, step, batch: b, lane: batch.length === 1 ? batch[0]! : `batch:${batch[0]}`, pool: plan.batchPools[b] ?? globalPool }
          : { id: key, key, step, lane: GLOBAL_LANE, pool: globalPool },
      );
    });
  }
  const remaining = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const task of tasks.values()) {
    const deps: string[] = [];
    for (const upId of task.step.upstream) {
      const up = stepById.get(upId)!;
      if (up.fanOut && task.batch !== undefined) deps.push(`${upId}|${task.batch}`);
      else deps.push(...keysOf(up));
    }
    remaining.set(task.key, deps.length);
    for (const d of deps) dependents.set(d, [...(dependents.get(d) ?? []), task.key]);
  }

  const threads = Math.max(1, opts.threads);
  const scheduler = new FairScheduler<Task>({ pools: opts.pools, globalLimit: threads, laneLimits: { [GLOBAL_LANE]: threads } });
  for (const t of tasks.values()) if (remaining.get(t.key) === 0) scheduler.submit(t);
  await drain(scheduler, async (current): Promise<UnitEnd> => {
    const taskResults = opts.signal?.aborted ? interrupted(current) : await runTask(current);
    results.push(...taskResults);
    if (continuing.has(current.key)) {
      // Back in its lane, behind every practice with less service; dependents wait.
      return {
        outcome: 'yield',
        afterComplete: () => {
          scheduler.submit(current);
          opts.onTaskEnd?.(current.step, taskResults, scheduler.snapshot());
        },
      };
    }
    return {
      outcome: taskResults.some((r) => r.status === 'error')
        ? 'error'
        : taskResults.length > 0 && taskResults.every((r) => r.status === 'interrupted')
          ? 'interrupted'
          : taskResults.every((r) => r.status === 'skipped') && taskResults.length > 0
            ? 'skipped'
            : 'success',
      beforeComplete: () => {
        for (const d of dependents.get(current.key) ?? []) {
          const n = remaining.get(d)! - 1;
          remaining.set(d, n);
          if (n === 0) scheduler.submit(tasks.get(d)!);
        }
      },
      afterComplete: () => opts.onTaskEnd?.(current.step, taskResults, scheduler.snapshot()),
    };
  });
  if (changedElsewhere.size > 0 && !opts.signal?.aborted) await buildAgainAfterMoves();
  if (refresh) await endFullRefresh(ctx.adapter, ctx.metaSchema, refresh);
  return results;

  /** Moved rows (moved-row-rebuilds.ts): the new results replace the earlier ones, with a note. */
  async function buildAgainAfterMoves(): Promise<void> {
    const built = (name: string) => results.some((r) => r.kind === 'build' && r.node === name && r.status === 'success');
    const { perPractice, global } = movedRowRebuilds(plan, changedElsewhere, built);
    const note = 'built again at the end of the run: rows of this practice moved to another practice after it was built';
    for (const { tenant, step } of perPractice) {
      const again = await runBatch(step, nodes[step.id]!, [tenant], []);
      for (const r of again) replaceResult(r, note);
      opts.onTaskEnd?.(step, again, scheduler.snapshot());
    }
    for (const step of global) {
      const again = await runOnce(step, nodes[step.id]!);
      for (const r of again) replaceResult(r, note);
      opts.onTaskEnd?.(step, again, scheduler.snapshot());
    }
  }

  function replaceResult(r: NodeResult, note: string): void {
    const next = r.kind === 'build' && r.status === 'success' ? { ...r, notes: [...(r.notes ?? []), note] } : r;
    const i = results.findIndex((x) => x.node === r.node && x.kind === r.kind);
    if (i >= 0) results[i] = next;
    else results.push(next);
  }

  function interrupted(task: Task): NodeResult[] {
    const why = typeof opts.signal?.reason === 'string' ? opts.signal.reason : 'the run was stopped before this ran';
    if (task.batch === undefined) return interruptedUnits(task.step, undefined, plan.tenants, why);
    const batch = continuing.get(task.key) ?? plan.batches[task.batch]!;
    continuing.delete(task.key);
    return interruptedUnits(task.step, batch, plan.tenants, why);
  }

  function markFailed(step: string, tenant: string, why: string): void {
    let m = failed.get(step);
    if (!m) failed.set(step, (m = new Map()));
    m.set(tenant, why);
  }

  function upstreamProblem(step: PlanStep, tenant: string | null): string | undefined {
    for (const up of step.upstream) {
      const once = onceFailed.get(up);
      if (once) return once;
      if (tenant !== null) {
        const why = failed.get(up)?.get(tenant);
        if (why) return why;
      }
    }
    return undefined;
  }

  async function runTask(task: Task): Promise<NodeResult[]> {
    const node = nodes[task.step.id]!;
    if (task.batch === undefined) return runOnce(task.step, node);
    const batch = continuing.get(task.key) ?? plan.batches[task.batch]!;
    continuing.delete(task.key);
    const next: string[] = [];
    const out = await runBatch(task.step, node, batch, next);
    if (next.length > 0) continuing.set(task.key, next);
    return out;
  }

  /** `next` receives the practices whose build stopped at its time slice with work left. */
  async function runBatch(step: PlanStep, node: ManifestNode, batch: string[], next: string[]): Promise<NodeResult[]> {
    const out: NodeResult[] = [];
    const runnable: string[] = [];
    for (const t of batch) {
      const why = upstreamProblem(step, t);
      if (why) {
        markFailed(step.id, t, why);
        out.push(result(step, t, 'skipped', { message: `skipped: ${why}`, code: Codes.upstreamFailed }));
      } else runnable.push(t);
    }
    let ok = runnable;
    if (step.build && runnable.length > 0) {
      ok = [];
      const groups = step.singleTenant ? runnable.map((t) => [t]) : [runnable];
      for (const g of groups) {
        await buildIsolated(step, node, g, (tenants, outcome, ms) => {
          for (const other of outcome.changedElsewhere ?? []) {
            if (!tenants.includes(other)) changedElsewhere.set(step.id, (changedElsewhere.get(step.id) ?? new Set()).add(other));
          }
          for (const t of tenants) {
            const key = `${step.id}|${t}`;
            const before = sliced.get(key) ?? { rows: 0, ms: 0, notes: [] };
            const sum = { rows: before.rows + (outcome.rows.get(t) ?? 0), ms: before.ms + ms, notes: [...before.notes, ...outcome.notes] };
            sliced.delete(key);
            if (outcome.workLeft) {
              sliced.set(key, sum);
              next.push(t);
              continue;
            }
            ok.push(t);
            out.push(result(step, t, 'success', { rows: sum.rows, ms: sum.ms, batch: tenants.length, notes: sum.notes }));
          }
        }, (tenant, err, ms) => {
          ms += sliced.get(`${step.id}|${tenant}`)?.ms ?? 0;
          sliced.delete(`${step.id}|${tenant}`);
          const msg = describeNodeError(err, node, ctx);
          markFailed(step.id, tenant, `${step.id} failed for this practice`);
          out.push(result(step, tenant, 'error', { message: msg.message, code: msg.code, ms }));
        });
      }
    }
    out.push(...(await runTests(step, ok)));
    return out;
  }

  async function runOnce(step: PlanStep, node: ManifestNode): Promise<NodeResult[]> {
    const blocked = upstreamProblem(step, null);
    if (blocked) {
      onceFailed.set(step.id, blocked);
      return [result(step, null, 'skipped', { message: `skipped: ${blocked}`, code: Codes.upstreamFailed })];
    }
    const stale = new Set<string>();
    for (const up of step.upstream) for (const t of [...(failed.get(up)?.keys() ?? []), ...(staleOnce.get(up) ?? [])]) stale.add(t);
    if (stale.size > 0 && !step.fanOut && step.scope !== 'tenant' && plan.fanIn !== 'use_last_good') {
      const why = `${stale.size} practice(s) failed upstream and the fan-in policy is '${plan.fanIn}'`;
      onceFailed.set(step.id, why);
      return [result(step, null, plan.fanIn === 'block' ? 'error' : 'skipped', { message: why, code: Codes.upstreamFailed, stale: [...stale].sort() })];
    }
    const out: NodeResult[] = [];
    if (step.build) {
      const started = performance.now();
      try {
        const outcome = await withRetries(() => opts.strategies.build(ctx, node, null));
        if (stale.size > 0) staleOnce.set(step.id, [...stale].sort());
        out.push(result(step, null, 'success', { rows: outcome.rows.get(null) ?? null, ms: performance.now() - started, stale: staleOnce.get(step.id), notes: outcome.notes }));
      } catch (err) {
        const msg = describeNodeError(err, node, ctx);
        onceFailed.set(step.id, `${step.id} failed`);
        return [result(step, null, 'error', { message: msg.message, code: msg.code, ms: performance.now() - started })];
      }
    }
    // Tests of a tenant-scoped view run per practice, like the tables they sit on.
    const testTenants = step.scope === 'tenant' ? plan.tenants.filter((t) => !upstreamProblem(step, t)) : [];
    out.push(...(await runTests(step, testTenants)));
    return out;
  }

  async function runTests(step: PlanStep, tenants: string[]): Promise<NodeResult[]> {
    const out: NodeResult[] = [];
    const tenantScoped = step.scope === 'tenant';
    if (tenantScoped && tenants.length === 0) return out;
    for (const name of step.tests) {
      const test = ctx.manifest.tests[name]!;
      const started = performance.now();
      const nodeName = (t: string | null) => `test:${name}${t ? `@${t}` : ''}`;
      try {
        const failures = await runDataTest(ctx.adapter, test, tenantScoped ? tenants : undefined);
        const ms = performance.now() - started;
        for (const t of tenantScoped ? tenants : [null]) {
          const n = failures.get(t) ?? 0;
          if (n > 0) {
            if (t !== null && plan.command === 'build') markFailed(step.id, t, `test ${name} failed for this practice`);
            if (t === null && plan.command === 'build') onceFailed.set(step.id, `test ${name} failed`);
          }
          out.push({
            node: nodeName(t),
            model: step.id,
            tenant: t,
            kind: 'test',
            status: n > 0 ? 'error' : 'success',
            rows: n,
            duration_ms: Math.round(ms),
            message: n > 0 ? `${test.kind} test ${name} found ${n} failing row(s) (${test.file}${test.line ? `:${test.line}` : ''})` : null,
            ...(n > 0 ? { code: Codes.testFailed } : {}),
          });
        }
      } catch (err) {
        // At the test's yml line; the engine's `LINE n:` counts lines of the compiled test, so it names that file.
        const line = lineInSql(ctx.adapter.errorPosition?.(err), test.sql);
        const text = ctx.adapter.describeError(err).replace(/ \| LINE \d+:.*$/, line ? ` (target/compiled/tests/${name}.sql:${line})` : '');
        const msg = `${test.file}${test.line ? `:${test.line}` : ''}: test ${name} could not run: ${text}`;
        for (const t of tenantScoped ? tenants : [null]) {
          if (t !== null && plan.command === 'build') markFailed(step.id, t, `test ${name} errored`);
          out.push({ node: nodeName(t), model: step.id, tenant: t, kind: 'test', status: 'error', rows: null, duration_ms: Math.round(performance.now() - started), message: msg, code: Codes.sqlError });
        }
      }
    }
    return out;
  }

  /** Runs a batch; on failure splits it until the failing practice is alone, so the rest commit. */
  async function buildIsolated(
    step: PlanStep,
    node: ManifestNode,
    tenants: string[],
    onSuccess: (tenants: string[], outcome: BuildOutcome, ms: number) => void,
    onError: (tenant: string, err: unknown, ms: number) => void,
  ): Promise<void> {
    const started = performance.now();
    try {
      const outcome = await withRetries(() => opts.strategies.build(ctx, node, tenants));
      onSuccess(tenants, outcome, performance.now() - started);
    } catch (err) {
      if (tenants.length > 1 && !failsForEveryPractice(err, ctx.adapter)) {
        const mid = Math.ceil(tenants.length / 2);
        await buildIsolated(step, node, tenants.slice(0, mid), onSuccess, onError);
        await buildIsolated(step, node, tenants.slice(mid), onSuccess, onError);
      } else {
        for (const t of tenants) onError(t, err, performance.now() - started);
      }
    }
  }

  /** Only transient failures (write conflicts, lost connections, a TransientError); never an SQL error in a model or a timeout. */
  async function withRetries<T>(fn: () => Promise<T>): Promise<T> {
    const policy = { ...DEFAULT_RETRY_POLICY, maxRetries: opts.retries ?? DEFAULT_RETRY_POLICY.maxRetries };
    return retrying(fn, { policy, classify: (err) => ctx.adapter.classifyError(err) });
  }

  function result(
    step: PlanStep,
    tenant: string | null,
    status: NodeResult['status'],
    o: { rows?: number | null; ms?: number; message?: string; code?: Code; batch?: number; stale?: string[]; notes?: string[] } = {},
  ): NodeResult {
    return {
      node: tenant ? `${step.id}@${tenant}` : step.id,
      model: step.id,
      tenant,
      kind: 'build',
      status,
      rows: o.rows ?? null,
      duration_ms: Math.round(o.ms ?? 0),
      message: o.message ?? null,
      ...(o.code ? { code: o.code } : {}),
      ...(o.batch && o.batch > 1 ? { batch_size: o.batch } : {}),
      ...(o.stale ? { stale_tenants: o.stale } : {}),
      ...(o.notes && o.notes.length > 0 ? { notes: o.notes } : {}),
    };
  }
}

/** Errors that do not depend on which practices are bound: splitting the batch cannot help. */
function failsForEveryPractice(err: unknown, adapter: BuildContext['adapter']): boolean {
  if (err instanceof TsformError) return err.code === Codes.schemaChanged || err.code === Codes.fullRefreshDependents;
  return adapter.isStatementError(err);
}

/**
 * Schemas, the meta schema's migrations, roles and memberships. Several runs may do this at once
 * (distributed workers, two CLI runs): two sessions granting on one schema collide in the
 * catalog ("tuple concurrently updated"), a transient conflict that is retried like a node's.
 */
async function prepareSchemas(ctx: BuildContext, plan: Plan, retry: <T>(fn: () => Promise<T>) => Promise<T>): Promise<void> {
  const nodes = manifestNodes(ctx.manifest);
  const schemas = new Set([ctx.metaSchema, ...plan.steps.filter((s) => s.build).map((s) => nodes[s.id]!.schema)]);
  for (const schema of schemas) await retry(() => ctx.adapter.ensureSchema(schema));
  // Slices record the deletions they absorbed in the meta schema as they are written.
  await migrateMeta(ctx.adapter, ctx.metaSchema);
  await retry(() => forgetNonIncremental(ctx.adapter, ctx.metaSchema, ctx.manifest));
  // Roles and memberships follow tenants.yml on every run: a new practice is protected from its first table.
  const policy = ctx.policy;
  if (policy) await retry(() => ctx.adapter.transaction((s) => applyPolicyFoundation(s, policy)));
}
