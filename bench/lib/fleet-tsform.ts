import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import type { NodeResult } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { profileAdapter, type Profile } from './fleet-profile.ts';

/**
 * One timed `tsform run` of the fleet project through the programmatic API, as the CLI runs it:
 * compile, plan, per-practice isolated builds in batches, run_results.json and run history.
 * Wall clock from the call to the closed warehouse. Busy time per model is the sum of its
 * tasks' durations (a batched task counted once), i.e. connection-seconds, not wall time.
 */

export interface TsformRunOptions {
  projectDir: string;
  /** The warehouse file of the project's target (for runs that bring their own adapter). */
  warehouse: string;
  threads: number;
  fullRefresh?: boolean;
  /** e.g. '1GB': raise DuckDB's checkpoint_threshold for the run and CHECKPOINT once at the end. */
  checkpointThreshold?: string;
  /**
   * Mark incremental steps multi-tenant in the plan (onPlan), so they run in batches like tables:
   * emulates the proposed runner change; only correct with a per-practice high-water mark.
   */
  batchIncremental?: boolean;
  /** Attribute database time to statement kinds (bench/lib/fleet-profile.ts). */
  profile?: boolean;
  log: (m: string) => void;
  label: string;
}

export interface TsformRun {
  seconds: number;
  /** CPU seconds of this process (DuckDB runs in it): the work done, less sensitive to a shared machine's load than wall time. */
  cpuSeconds: number;
  /** From the plan to the last task (the runner's share of the wall clock). */
  executeSeconds: number;
  /** Connection-seconds per model. */
  busy: Record<string, number>;
  /** Tasks (statements' transactions) per model. */
  tasks: Record<string, number>;
  practices: number;
  profile?: Profile;
}

export async function timeTsformRun(o: TsformRunOptions): Promise<TsformRun> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let planAt = t0;
  let lastTaskAt = t0;
  let done = 0;
  let total = 0;
  let lastLog = t0;
  const busy: Record<string, number> = {};
  const tasks: Record<string, number> = {};
  // Our own adapter only when the run needs a setting or a profile; otherwise runWorkspace opens it.
  // A setting is given at open: the adapter locks DuckDB's configuration once its files are attached.
  const settings = o.checkpointThreshold ? { checkpoint_threshold: o.checkpointThreshold } : undefined;
  const own = o.checkpointThreshold || o.profile ? await DuckDBAdapter.open({ path: o.warehouse, connections: o.threads, settings }) : undefined;
  const profiled = own && o.profile ? profileAdapter(own) : undefined;
  const adapter = profiled?.adapter ?? own;
  let results: NodeResult[];
  try {
    const run = await runWorkspace({
      projectDir: o.projectDir,
      command: 'run',
      exclude: ['kind:source', 'kind:seed'],
      threads: o.threads,
      fullRefresh: o.fullRefresh,
      adapter,
      onPlan: (plan) => {
        planAt = performance.now();
        if (o.batchIncremental) for (const step of plan.steps) step.singleTenant = false;
        total = plan.steps.reduce((n, s) => n + (s.fanOut ? plan.batches.length : 1), 0);
      },
      onTaskEnd: (step, res) => {
        lastTaskAt = performance.now();
        done++;
        const builds = res.filter((r) => r.kind === 'build');
        // A batch's results all carry the batch's duration; single-practice groups each their own.
        const ms = step.singleTenant ? builds.reduce((a, r) => a + r.duration_ms, 0) : Math.max(0, ...builds.map((r) => r.duration_ms));
        busy[step.id] = (busy[step.id] ?? 0) + ms / 1000;
        tasks[step.id] = (tasks[step.id] ?? 0) + (step.singleTenant ? builds.length : 1);
        if (lastTaskAt - lastLog > 5000) {
          lastLog = lastTaskAt;
          o.log(`${o.label}: ${done}/${total} tasks, ${((lastTaskAt - t0) / 1000).toFixed(0)} s`);
        }
      },
    });
    results = run.results;
    if (o.checkpointThreshold) await adapter!.query('CHECKPOINT');
  } finally {
    await own?.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const failed = results.filter((r) => r.status !== 'success');
  if (failed.length > 0) {
    throw new Error(`${o.label}: ${failed.length} node(s) did not succeed, e.g. ${failed.slice(0, 3).map((r) => `${r.node}: ${r.status} ${r.message ?? ''}`).join('; ')}`);
  }
  const practices = new Set(results.filter((r) => r.tenant).map((r) => r.tenant)).size;
  return {
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    executeSeconds: (lastTaskAt - planAt) / 1000,
    busy: round(busy),
    tasks,
    practices,
    ...(profiled ? { profile: { seconds: round(profiled.profile.seconds), counts: profiled.profile.counts } } : {}),
  };
}

function round(r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v * 100) / 100]));
}
