import type { NodeResult, NodeStatus } from '../artifacts/run-results.ts';
import type { Plan, PlanStep } from '../plan/plan.ts';

/** One step (dbt's node) of the plan, finished for every practice it ran for. */
export interface NodeLine {
  /** 1-based order of completion, of `total`. */
  index: number;
  total: number;
  step: string;
  what: string;
  status: 'OK' | 'ERROR' | 'SKIP' | 'STOPPED';
  /** Practices (or 1 for a node built once) by outcome. */
  counts: Record<NodeStatus, number>;
  practices: number | null;
  rows: number;
  /** From the first of its statements starting to the last one ending (approximate: from result durations). */
  wallMs: number;
}

/**
 * Turns the results of a run's tasks (a step × a batch of practices) into one line per step
 * once every practice of it has reported: what dbt prints per node, kept to one line per model
 * however many practices it fans out to (issue 15).
 */
export class NodeLines {
  private readonly expected = new Map<string, number>();
  private readonly seen = new Map<string, { counts: Record<NodeStatus, number>; rows: number; first: number; last: number; tasks: number }>();
  private done = 0;
  private readonly total: number;

  constructor(private readonly plan: Plan, private readonly now: () => number = () => performance.now()) {
    this.total = plan.steps.length;
    for (const s of plan.steps) this.expected.set(s.id, s.build ? (s.fanOut ? plan.tenants.length : 1) : s.fanOut ? plan.batches.length : 1);
  }

  /** The lines of the steps this task's results complete (none while practices of it are still to come). */
  add(step: PlanStep, results: readonly NodeResult[]): NodeLine[] {
    const now = this.now();
    let s = this.seen.get(step.id);
    if (!s) this.seen.set(step.id, (s = { counts: { success: 0, error: 0, skipped: 0, interrupted: 0 }, rows: 0, first: now, last: now, tasks: 0 }));
    s.tasks++;
    s.last = now;
    for (const r of results) {
      s.first = Math.min(s.first, now - r.duration_ms);
      if (step.build ? r.kind !== 'build' : r.kind !== 'test') continue;
      s.counts[r.status]++;
      if (r.kind === 'build' && r.status === 'success') s.rows += r.rows ?? 0;
    }
    const reported = step.build ? s.counts.success + s.counts.error + s.counts.skipped + s.counts.interrupted : s.tasks;
    if (reported < this.expected.get(step.id)!) return [];
    this.expected.set(step.id, Number.POSITIVE_INFINITY);
    this.done++;
    return [this.line(step, s)];
  }

  private line(step: PlanStep, s: { counts: Record<NodeStatus, number>; rows: number; first: number; last: number }): NodeLine {
    const c = s.counts;
    const status = c.error > 0 ? 'ERROR' : c.success > 0 || (!step.build && c.skipped === 0 && c.interrupted === 0) ? 'OK' : c.interrupted > 0 ? 'STOPPED' : 'SKIP';
    return {
      index: this.done,
      total: this.total,
      step: step.kind === 'source' ? step.id.replace(/^source:/, '') : step.id,
      what: describeStep(step),
      status,
      counts: { ...c },
      practices: step.fanOut || step.scope === 'tenant' ? this.plan.tenants.length : null,
      rows: s.rows,
      wallMs: Math.max(0, s.last - s.first),
    };
  }
}

/** `table model`, `incremental model`, `seed`, `source`, `tests of`. */
function describeStep(step: PlanStep): string {
  if (!step.build) return 'tests of';
  switch (step.kind) {
    case 'model':
      return `${step.materialized} model`;
    case 'tenants':
      return 'practices relation';
    case 'vault':
      return 'vault table';
    case 'seed':
    case 'source':
      return step.kind;
  }
}

/**
 * `  4 of 28 OK     table model stg_claims ... 221 practices, 12,345 rows [1.2s]`; with
 * failures: `... 221 practices: 219 ok, 1 failed, 1 skipped`.
 */
export function formatNodeLine(l: NodeLine, width = 72): string {
  const head = `${String(l.index).padStart(String(l.total).length)} of ${l.total} ${l.status.padEnd(7)} ${l.what} ${l.step} `;
  const c = l.counts;
  const mixed = [c.error > 0 ? `${c.error} failed` : '', c.skipped > 0 ? `${c.skipped} skipped` : '', c.interrupted > 0 ? `${c.interrupted} interrupted` : ''].filter(Boolean);
  const tests = l.what === 'tests of';
  // A build counts practices; a test-only step counts test units (tests × practices).
  const units = c.success + c.error + c.skipped + c.interrupted;
  const who = tests ? `${units} test${units === 1 ? '' : 's'}` : l.practices === null ? 'once' : `${l.practices} practice${l.practices === 1 ? '' : 's'}`;
  const outcome = mixed.length > 0 ? `${who}: ${c.success} ${tests ? 'passed' : 'ok'}, ${mixed.join(', ')}` : who;
  const rows = tests ? '' : `, ${l.rows.toLocaleString('en-US')} rows`;
  const tail = ` ${outcome}${rows} [${(l.wallMs / 1000).toFixed(1)}s]`;
  return `${head}${'.'.repeat(Math.max(3, width - head.length))}${tail}`;
}
