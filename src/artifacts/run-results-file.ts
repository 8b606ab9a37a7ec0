import { readFileSync } from 'node:fs';
import type { NodeResult, NodeStatus, RunResults, TenantSummary } from './run-results.ts';

/**
 * `target/run_results.json` as written, version 2 (issue 15 item 11): grouped per node, with
 * per-practice entries only for what did not succeed. Version 1 listed every (node × practice):
 * 1.4 MB for one demo run, ~50 MB at 5,000 practices. What `retry`, slim CI and on-call read
 * (which unit failed, was skipped or interrupted, for which practice, why) is all here;
 * `readRunResults` gives back the per-unit list (successes without their row counts).
 * `--full-results` also writes version 1 as `run_results.full.json`.
 */
export const RUN_RESULTS_FILE_VERSION = 2;

type Counts = Record<NodeStatus, number>;

/** A unit that did not succeed: a practice's (or a once-node's) own entry. */
export type UnitEntry = Omit<NodeResult, 'node' | 'model' | 'kind'>;

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
  /** Every unit that did not succeed, in the order they ended. */
  not_success: UnitEntry[];
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
  /** The run's practices, once; a per-practice node's successes are these minus its `not_success` and `not_run`. */
  practices: string[];
  summary: { units: number } & Counts & { practices: Counts };
  nodes: (NodeRecord & { not_run?: string[] })[];
  /** Practices whose status is not success (error, skipped or interrupted), with their counts. */
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
  const summary = { units: run.results.length, ...zero(), practices: zero() };
  for (const r of run.results) {
    summary[r.status]++;
    const key = r.tenant === null ? r.node : r.node.slice(0, r.node.length - r.tenant.length - 1);
    let g = byNode.get(key);
    if (!g) {
      const rec: NodeRecord = { node: key, model: r.model, kind: r.kind, per_practice: r.tenant !== null, counts: zero(), rows: 0, duration_ms: { total: 0, max: 0, p50: 0, p90: 0 }, not_success: [] };
      byNode.set(key, (g = { rec, durations: [], seen: new Set(), notes: new Map() }));
    }
    const { rec } = g;
    rec.counts[r.status]++;
    rec.rows += r.rows ?? 0;
    g.durations.push(r.duration_ms);
    if (r.tenant !== null) g.seen.add(r.tenant);
    if (r.batch_size !== undefined) rec.max_batch_size = Math.max(rec.max_batch_size ?? 0, r.batch_size);
    for (const n of r.notes ?? []) g.notes.set(n, (g.notes.get(n) ?? 0) + 1);
    if (r.status !== 'success' || r.stale_tenants) {
      const { node: _n, model: _m, kind: _k, ...entry } = r;
      rec.not_success.push(entry);
    }
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
    practices,
    summary,
    nodes,
    tenants: Object.fromEntries(Object.entries(run.tenants).filter(([, s]) => s.status !== 'success')),
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
  const results: NodeResult[] = [];
  for (const n of file.nodes) {
    const listed = new Set(n.not_success.map((e) => e.tenant));
    const notRun = new Set(n.not_run ?? []);
    const unit = (e: UnitEntry): NodeResult => ({ node: e.tenant === null ? n.node : `${n.node}@${e.tenant}`, model: n.model, kind: n.kind, ...e });
    if (n.per_practice) {
      for (const p of file.practices) {
        if (listed.has(p) || notRun.has(p)) continue;
        results.push(unit({ tenant: p, status: 'success', rows: null, duration_ms: 0, message: null }));
      }
    } else if (!listed.has(null) && n.counts.success > 0) {
      results.push(unit({ tenant: null, status: 'success', rows: n.rows, duration_ms: n.duration_ms.total, message: null }));
    }
    results.push(...n.not_success.map(unit));
  }
  const tenants: Record<string, TenantSummary> = {};
  for (const p of file.practices) tenants[p] = file.tenants[p] ?? { status: 'success', success: 0, error: 0, skipped: 0, interrupted: 0 };
  for (const r of results) if (r.tenant !== null && !file.tenants[r.tenant] && tenants[r.tenant]) tenants[r.tenant]!.success++;
  return {
    schema_version: 1,
    run_id: file.run_id,
    command: file.command,
    target: file.target,
    started_at: file.started_at,
    finished_at: file.finished_at,
    elapsed_ms: file.elapsed_ms,
    results,
    tenants,
    alerts: file.alerts.flatMap((a) => a.tenants.map((tenant, i) => ({ kind: a.kind, tenant, message: i === 0 ? a.first_message : '' }))),
    ...(file.notices ? { notices: file.notices } : {}),
    ...(file.needs_action ? { needs_action: file.needs_action } : {}),
    ...(file.interrupted ? { interrupted: true } : {}),
  };
}

/** Reads target/run_results.json (either version) as the per-unit list. */
export function readRunResults(path: string): RunResults {
  return fromRunResultsFile(JSON.parse(readFileSync(path, 'utf8')) as RunResultsFile | RunResults);
}
