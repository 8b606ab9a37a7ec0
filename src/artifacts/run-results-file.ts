import { readFileSync } from 'node:fs';
import { unitsNotRun, type NodeResult, type NodeStatus, type RunResults, type TenantSummary } from './run-results.ts';

/**
 * `target/run_results.json` as written, version 2 (issue 15 item 11): a summary per node, and
 * per-unit entries only for what did not succeed. Version 1 listed every (node × practice):
 * 1.4 MB for one demo run, ~50 MB at 5,000 practices. The fields version-1 readers use keep
 * their shape: `results` (now only the units that failed, were skipped or interrupted: what
 * `retry` and on-call read), `tenants` (every practice's status and counts), `command`,
 * `target`, `run_id`. `readRunResults` gives back the per-unit list (successes without their
 * row counts). `--full-results` also writes version 1 as `run_results.full.json`.
 */
export const RUN_RESULTS_FILE_VERSION = 2;

type Counts = Record<NodeStatus, number>;

export interface NodeRecord {
  /** The model id, `source:…`, or `test:<name>`, without `@practice`. */
  node: string;
  model: string;
  kind: 'build' | 'test';
  /** Units of this node per practice (tenant-scoped), or one for all. */
  per_practice: boolean;
  counts: Counts;
  /** Rows written (builds) or failing rows (tests), summed over the units that reported them. */
  rows: number;
  duration_ms: { total: number; max: number; p50: number; p90: number };
  /** Practices that shared a statement with others, at most (batching). */
  max_batch_size?: number;
  /** Notes of the units, each once with how many units had it. */
  notes?: { note: string; units: number }[];
}

export interface RunResultsFile {
  schema_version: typeof RUN_RESULTS_FILE_VERSION;
  run_id: string;
  command: string;
  target: string;
  started_at: string;
  finished_at: string;
  elapsed_ms: number;
  interrupted?: boolean;
  /**
   * Every unit the run announced, by status; `not_run`: announced units without a result (tests
   * of a model that failed or was skipped). The same counts as the summary the run printed.
   */
  summary: { units: number } & Counts & { not_run: number; practices: Counts };
  /** Per node; a per-practice node's successes are the run's practices (`tenants`) minus its `results` and `not_run`. */
  nodes: (NodeRecord & { not_run?: string[] })[];
  /** Every unit that did not succeed (and global nodes that read stale practices), as version 1 wrote them. */
  results: NodeResult[];
  /** Every practice of the run: its status and counts. */
  tenants: Record<string, TenantSummary>;
  /** Alerts raised, per kind: how many, which practices, the first message. */
  alerts: { kind: string; count: number; tenants: string[]; first_message: string }[];
  notices?: string[];
  needs_action?: string[];
}

const zero = (): Counts => ({ success: 0, error: 0, skipped: 0, interrupted: 0 });

export function toRunResultsFile(run: RunResults): RunResultsFile {
  const practices = Object.keys(run.tenants);
  const byNode = new Map<string, { rec: NodeRecord; durations: number[]; seen: Set<string>; notes: Map<string, number> }>();
  const notRun = unitsNotRun(run);
  const summary = { units: run.results.length + notRun, ...zero(), not_run: notRun, practices: zero() };
  const listed: NodeResult[] = [];
  for (const r of run.results) {
    summary[r.status]++;
    const key = r.tenant === null ? r.node : r.node.slice(0, r.node.length - r.tenant.length - 1);
    let g = byNode.get(key);
    if (!g) {
      const rec: NodeRecord = { node: key, model: r.model, kind: r.kind, per_practice: r.tenant !== null, counts: zero(), rows: 0, duration_ms: { total: 0, max: 0, p50: 0, p90: 0 } };
      byNode.set(key, (g = { rec, durations: [], seen: new Set(), notes: new Map() }));
    }
    const { rec } = g;
    rec.counts[r.status]++;
    rec.rows += r.rows ?? 0;
    g.durations.push(r.duration_ms);
    if (r.tenant !== null) g.seen.add(r.tenant);
    if (r.batch_size !== undefined) rec.max_batch_size = Math.max(rec.max_batch_size ?? 0, r.batch_size);
    for (const n of r.notes ?? []) g.notes.set(n, (g.notes.get(n) ?? 0) + 1);
    if (r.status !== 'success' || r.stale_tenants) listed.push(r);
  }
  for (const s of Object.values(run.tenants)) summary.practices[s.status]++;
  const nodes = [...byNode.values()].map(({ rec, durations, seen, notes }) => {
    const sorted = [...durations].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    rec.duration_ms = { total: sorted.reduce((a, b) => a + b, 0), max: sorted[sorted.length - 1] ?? 0, p50: at(0.5), p90: at(0.9) };
    if (notes.size > 0) rec.notes = [...notes].map(([note, units]) => ({ note, units }));
    const notRun = rec.per_practice ? practices.filter((p) => !seen.has(p)) : [];
    return notRun.length > 0 ? { ...rec, not_run: notRun } : rec;
  });
  const alerts = new Map<string, RunResultsFile['alerts'][number]>();
  for (const a of run.alerts ?? []) {
    const g = alerts.get(a.kind) ?? { kind: a.kind, count: 0, tenants: [], first_message: a.message };
    g.count++;
    g.tenants.push(a.tenant);
    alerts.set(a.kind, g);
  }
  return {
    schema_version: RUN_RESULTS_FILE_VERSION,
    run_id: run.run_id,
    command: run.command,
    target: run.target,
    started_at: run.started_at,
    finished_at: run.finished_at,
    elapsed_ms: run.elapsed_ms,
    ...(run.interrupted ? { interrupted: true } : {}),
    summary,
    nodes,
    results: listed,
    tenants: run.tenants,
    alerts: [...alerts.values()],
    ...(run.notices?.length ? { notices: run.notices } : {}),
    ...(run.needs_action?.length ? { needs_action: run.needs_action } : {}),
  };
}

/**
 * The per-unit view of a run_results.json of either version. From version 2, a success is
 * `{status: 'success', rows: null, duration_ms: 0}`: the file keeps only their totals.
 */
export function fromRunResultsFile(doc: RunResultsFile | RunResults): RunResults {
  if (doc.schema_version === 1) return doc as RunResults;
  const file = doc as RunResultsFile;
  const practices = Object.keys(file.tenants);
  const listed = new Map<string, NodeResult[]>();
  for (const r of file.results) {
    const key = r.tenant === null ? r.node : r.node.slice(0, r.node.length - r.tenant.length - 1);
    listed.set(key, [...(listed.get(key) ?? []), r]);
  }
  const results: NodeResult[] = [];
  for (const n of file.nodes) {
    const own = listed.get(n.node) ?? [];
    const skip = new Set<string | null>([...own.map((r) => r.tenant), ...(n.not_run ?? [])]);
    const success = (tenant: string | null, rows: number | null, ms: number): NodeResult => ({
      node: tenant === null ? n.node : `${n.node}@${tenant}`,
      model: n.model,
      tenant,
      kind: n.kind,
      status: 'success',
      rows,
      duration_ms: ms,
      message: null,
    });
    if (n.per_practice) for (const p of practices) if (!skip.has(p)) results.push(success(p, null, 0));
    if (!n.per_practice && !skip.has(null) && n.counts.success > 0) results.push(success(null, n.rows, n.duration_ms.total));
    results.push(...own);
  }
  return {
    schema_version: 1,
    run_id: file.run_id,
    command: file.command,
    target: file.target,
    started_at: file.started_at,
    finished_at: file.finished_at,
    elapsed_ms: file.elapsed_ms,
    results,
    tenants: file.tenants,
    alerts: file.alerts.flatMap((a) => a.tenants.map((tenant, i) => ({ kind: a.kind, tenant, message: i === 0 ? a.first_message : '' }))),
    ...(file.notices ? { notices: file.notices } : {}),
    ...(file.needs_action ? { needs_action: file.needs_action } : {}),
    ...(file.interrupted ? { interrupted: true } : {}),
    // Files from before `not_run` counted only the units with a result: nothing to restore.
    ...(typeof file.summary?.not_run === 'number' ? { planned_units: file.summary.units } : {}),
  };
}

/** Reads target/run_results.json (either version) as the per-unit list. */
export function readRunResults(path: string): RunResults {
  return fromRunResultsFile(JSON.parse(readFileSync(path, 'utf8')) as RunResultsFile | RunResults);
}
