import pc from 'picocolors';
import type { NodeResult, RunResults } from '../artifacts/run-results.ts';
import type { Plan, PlanStep } from '../plan/plan.ts';
import type { SchedulerSnapshot } from '../schedule/index.ts';

/** How a run reports itself: one object per format, with optional hooks (vitest's reporter shape). */
export interface RunReporter {
  onPlan?(plan: Plan): void;
  onTaskEnd?(step: PlanStep, results: NodeResult[], progress: SchedulerSnapshot): void;
  onEnd(run: RunResults): void;
  /** Where alerts of `type: log` go. */
  alertLog: { write(line: string): unknown };
}

type Out = (line: string) => void;

/** Machine-readable: one JSON object per line (plan, each node, each alert, summary). */
export function jsonReporter(out: Out): RunReporter {
  return {
    onPlan: (p) => out(JSON.stringify({ event: 'plan', command: p.command, nodes: p.nodeCount, steps: p.steps.length, tenants: p.tenants.length, batches: p.batches.length })),
    onTaskEnd: (_step, results) => {
      for (const r of results) out(JSON.stringify({ event: 'node', ...r }));
    },
    onEnd: (run) => out(JSON.stringify({ event: 'summary', ...summaryOf(run) })),
    alertLog: { write: (line: string) => out(line.trimEnd()) },
  };
}

/**
 * For a person: failures as they happen, and on a terminal one live status line (practices
 * done / failed, lanes running / queued, the slowest lanes) rewritten in place.
 */
export function textReporter(out: Out, live: { isTTY: boolean; write(s: string): unknown }): RunReporter {
  const tenantsDone = new Set<string>();
  const tenantsFailed = new Set<string>();
  const expected = new Map<string, number>();
  let total = 0;
  let perTenant = 0;
  let statusShown = false;
  const clear = () => {
    if (statusShown) live.write('\r\x1b[K');
    statusShown = false;
  };
  const print = (line: string) => {
    clear();
    out(line);
  };
  return {
    onPlan(p) {
      total = p.tenants.length;
      perTenant = p.steps.filter((s) => s.fanOut && s.build).length;
      print(`${p.command}: ${p.steps.length} nodes × ${p.tenants.length} practices = ${p.nodeCount} units in ${p.batches.length} batches`);
    },
    onTaskEnd(step, results, progress) {
      for (const r of results) {
        if (r.tenant === null || r.kind !== 'build') continue;
        if (r.status === 'error' || r.status === 'skipped') tenantsFailed.add(r.tenant);
        const n = (expected.get(r.tenant) ?? 0) + 1;
        expected.set(r.tenant, n);
        if (n >= perTenant) tenantsDone.add(r.tenant);
      }
      for (const r of results.filter((x) => x.status === 'error')) print(`${pc.red('✗')} ${r.node}: ${r.message ?? ''}`);
      if (!live.isTTY) {
        const builds = results.filter((r) => r.kind === 'build');
        const ok = builds.filter((r) => r.status === 'success');
        if (builds.length > 0) print(`${ok.length === builds.length ? pc.green('OK  ') : pc.yellow('PART')} ${step.id} [${builds.length} practice(s)] ${ok.reduce((n, r) => n + (r.rows ?? 0), 0)} rows`);
        return;
      }
      const slow = progress.slowest
        .slice(0, 3)
        .map((l) => `${l.lane} ${(l.busy_ms / 1000).toFixed(1)}s`)
        .join(', ');
      clear();
      live.write(
        `practices ${pc.green(String(tenantsDone.size - [...tenantsDone].filter((t) => tenantsFailed.has(t)).length))} done / ${pc.red(String(tenantsFailed.size))} failed of ${total}` +
          ` · lanes ${progress.lanes.running} running, ${progress.lanes.queued} queued · slowest: ${slow || '-'}`,
      );
      statusShown = true;
    },
    onEnd(run) {
      clear();
      const s = summaryOf(run);
      out('');
      out(`Done in ${(run.elapsed_ms / 1000).toFixed(1)}s: ${s.success} succeeded, ${s.error} failed, ${s.skipped} skipped.`);
      if (s.failed_global.length > 0) out(pc.red(`Failed global nodes: ${s.failed_global.join(', ')}`));
      if (s.failed_practices.length > 0) {
        out(pc.red(`Practices with failures (${s.failed_practices.length}): ${s.failed_practices.slice(0, 20).join(', ')}${s.failed_practices.length > 20 ? ', …' : ''}`));
      }
      for (const n of run.notices ?? []) out(pc.yellow(`notice: ${n}`));
      if (s.sla_at_risk.length > 0) out(pc.yellow(`SLA at risk or late (${s.sla_at_risk.length}): ${s.sla_at_risk.slice(0, 20).join(', ')}${s.sla_at_risk.length > 20 ? ', …' : ''}`));
      out('Results: target/run_results.json');
    },
    alertLog: { write: () => true },
  };
}

function summaryOf(run: RunResults) {
  const count = (s: string) => run.results.filter((r) => r.status === s).length;
  return {
    run_id: run.run_id,
    elapsed_ms: run.elapsed_ms,
    success: count('success'),
    error: count('error'),
    skipped: count('skipped'),
    failed_practices: Object.entries(run.tenants)
      .filter(([, s]) => s.status === 'error')
      .map(([t]) => t),
    failed_global: run.results.filter((r) => r.tenant === null && r.status === 'error').map((r) => r.node),
    sla_at_risk: [...new Set((run.alerts ?? []).filter((a) => a.kind !== 'node_failed').map((a) => a.tenant))],
    notices: run.notices ?? [],
  };
}
