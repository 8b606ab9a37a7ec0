import pc from 'picocolors';
import { unitsNotRun, type NodeResult, type RunResults } from '../artifacts/run-results.ts';
import type { Plan, PlanStep } from '../plan/plan.ts';
import { plannedUnits, type PlannedUnits } from '../plan/units.ts';
import { FailureDigest } from './failure-digest.ts';
import { formatNodeLine, NodeLines, type NodeLine } from './node-lines.ts';
import type { SchedulerSnapshot } from '../schedule/index.ts';

/** How a run reports itself: one object per format, with optional hooks (vitest's reporter shape). */
export interface RunReporter {
  onPlan?(plan: Plan, units?: PlannedUnits): void;
  onTaskEnd?(step: PlanStep, results: NodeResult[], progress: SchedulerSnapshot): void;
  onEnd(run: RunResults): void;
  /** Where alerts of `type: log` go. */
  alertLog: { write(line: string): unknown };
}

type Out = (line: string) => void;

/** Machine-readable: one JSON object per line (plan, each node, each alert, summary). */
export function jsonReporter(out: Out): RunReporter {
  let planned: PlannedUnits | undefined;
  return {
    onPlan: (p, units = plannedUnits(p)) => {
      planned = units;
      out(JSON.stringify({ event: 'plan', command: p.command, nodes: p.nodeCount, steps: p.steps.length, tenants: p.tenants.length, batches: p.batches.length, units }));
    },
    onTaskEnd: (_step, results) => {
      for (const r of results) out(JSON.stringify({ event: 'node', ...r }));
    },
    onEnd: (run) => out(JSON.stringify({ event: 'summary', ...summaryOf(run, planned) })),
    alertLog: { write: (line: string) => out(line.trimEnd()) },
  };
}

/**
 * For a person: a line per node once all its practices reported (dbt's `4 of 28 OK …`), the
 * first failure of each model as it happens, and on a terminal one live status line (practices
 * done / failed, lanes running / queued, the slowest lanes) rewritten in place. Alerts are summed
 * up per kind at the end in words; their JSON goes to `alerts` (the log file), never the terminal.
 */
export function textReporter(out: Out, live: { isTTY: boolean; write(s: string): unknown }, alerts: { write(line: string): unknown } = { write: () => true }): RunReporter {
  const tenantsDone = new Set<string>();
  const tenantsFailed = new Set<string>();
  const expected = new Map<string, number>();
  let total = 0;
  let perTenant = 0;
  let planned: PlannedUnits | undefined;
  let nodeLines: NodeLines | undefined;
  const failures = new FailureDigest();
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
    onPlan(p, units = plannedUnits(p)) {
      total = p.tenants.length;
      perTenant = p.steps.filter((s) => s.fanOut && s.build).length;
      planned = units;
      nodeLines = new NodeLines(p);
      print(planLine(p, units));
    },
    onTaskEnd(step, results, progress) {
      for (const r of results) {
        if (r.tenant === null || r.kind !== 'build') continue;
        if (r.status === 'error' || r.status === 'skipped') tenantsFailed.add(r.tenant);
        const n = (expected.get(r.tenant) ?? 0) + 1;
        expected.set(r.tenant, n);
        if (n >= perTenant) tenantsDone.add(r.tenant);
      }
      for (const line of failures.add(results)) print(`${pc.red('✗')} ${line}`);
      for (const l of nodeLines?.add(step, results) ?? []) print(colourNodeLine(formatNodeLine(l), l.status));
      if (!live.isTTY) return;
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
      const s = summaryOf(run, planned);
      out('');
      out(`Done in ${(run.elapsed_ms / 1000).toFixed(1)}s: ${totalsLine(s)}.`);
      for (const line of failures.summary()) out(pc.red(`✗ ${line}`));
      if (s.failed_global.length > 0) out(pc.red(`Failed global nodes: ${s.failed_global.join(', ')}`));
      if (s.failed_practices.length > 0) {
        out(pc.red(`Practices with failures (${s.failed_practices.length}): ${s.failed_practices.slice(0, 20).join(', ')}${s.failed_practices.length > 20 ? ', …' : ''}`));
      }
      for (const n of run.notices ?? []) out(pc.yellow(`notice: ${n}`));
      for (const n of run.needs_action ?? []) out(pc.red(`action needed: ${n}`));
      for (const line of alertLines(run.alerts ?? [])) out(pc.yellow(line));
      out('Results: target/run_results.json');
    },
    alertLog: alerts,
  };
}

function colourNodeLine(line: string, status: NodeLine['status']): string {
  const word = status === 'OK' ? pc.green(status) : status === 'ERROR' ? pc.red(status) : pc.yellow(status);
  return line.replace(status, word);
}

/**
 * One line per alert kind, in words: `alerts: node_failed for 5 practices (p_a, p_b, …)`. The
 * alerts themselves (JSON, one per practice and kind) went to the sinks of tsform.yml and are in
 * run_results.json; a first run's never-loaded practices raise none (they are pending).
 */
export function alertLines(alerts: readonly { kind: string; tenant: string }[], shown = 10): string[] {
  const byKind = new Map<string, string[]>();
  for (const a of alerts) byKind.set(a.kind, [...(byKind.get(a.kind) ?? []), a.tenant]);
  return [...byKind].map(([kind, tenants]) => {
    const ids = [...new Set(tenants)];
    return `alerts: ${ALERT_WORDS[kind] ?? kind} for ${ids.length} practice${ids.length === 1 ? '' : 's'} (${ids.slice(0, shown).join(', ')}${ids.length > shown ? ', …' : ''}); details in target/run_results.json`;
  });
}

const ALERT_WORDS: Record<string, string> = {
  node_failed: 'node_failed (a node failed, its downstream skipped)',
  sla_at_risk: 'sla_at_risk (predicted to miss its deadline)',
  sla_late: 'sla_late (past its deadline)',
};

/**
 * `build: 5 steps for 5 practices = 121 units: 21 builds (4 steps × 5 practices + 1 once) + 99 tests + 1 check; 2 batches`.
 * Every term is a number of results the run will report, so the total is the final line's.
 */
export function planLine(p: Plan, u: PlannedUnits): string {
  const perPractice = p.steps.filter((s) => s.build && s.fanOut).length;
  const builds = [perPractice > 0 ? `${perPractice} step${perPractice === 1 ? '' : 's'} × ${p.tenants.length} practices` : '', u.onceBuilds > 0 ? `${u.onceBuilds} once` : '']
    .filter(Boolean)
    .join(' + ');
  const terms = [`${u.builds} builds${builds ? ` (${builds})` : ''}`, u.tests > 0 ? `${u.tests} tests` : '', u.checks > 0 ? `${u.checks} check${u.checks === 1 ? '' : 's'} (leak scan)` : ''];
  return `${p.command}: ${p.steps.length} steps for ${p.tenants.length} practices = ${u.total} units: ${terms.filter(Boolean).join(' + ')}; ${p.batches.length} batch${p.batches.length === 1 ? '' : 'es'}`;
}

/** `121 units = 119 succeeded + 1 failed + 1 skipped`; units that never reported (tests of a failed model) are `not run`. */
export function totalsLine(s: Pick<RunSummary, 'units' | 'success' | 'error' | 'skipped' | 'not_run'> & { interrupted?: number }): string {
  const terms = [`${s.success} succeeded`, `${s.error} failed`, `${s.skipped} skipped`];
  if (s.interrupted) terms.push(`${s.interrupted} interrupted`);
  if (s.not_run > 0) terms.push(`${s.not_run} not run (tests of a model that failed or was skipped)`);
  return `${s.units} units = ${terms.join(' + ')}`;
}

export type RunSummary = ReturnType<typeof summaryOf>;

/**
 * The final counts; announced units that reported nothing are counted as not run. The run's own
 * record of what it announced comes first: run_results.json's summary is counted from it too.
 */
export function summaryOf(run: RunResults, planned?: PlannedUnits) {
  const count = (s: string) => run.results.filter((r) => r.status === s).length;
  const notRun = unitsNotRun({ results: run.results, planned_units: run.planned_units ?? planned?.total });
  return {
    run_id: run.run_id,
    elapsed_ms: run.elapsed_ms,
    units: run.results.length + notRun,
    success: count('success'),
    error: count('error'),
    skipped: count('skipped'),
    interrupted: count('interrupted'),
    not_run: notRun,
    failed_practices: Object.entries(run.tenants)
      .filter(([, s]) => s.status === 'error')
      .map(([t]) => t),
    failed_global: run.results.filter((r) => r.tenant === null && r.status === 'error').map((r) => r.node),
    sla_at_risk: [...new Set((run.alerts ?? []).filter((a) => a.kind !== 'node_failed').map((a) => a.tenant))],
    notices: run.notices ?? [],
    needs_action: run.needs_action ?? [],
  };
}
