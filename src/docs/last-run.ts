/**
 * The last run as the docs site shows it, read from target/run_results.json. Pure: the parsed
 * JSON in, a summary per model out. Defensive by design (the file is an artifact another version
 * may have written): every field is checked and anything else is passed over. Version 2 (compact)
 * has a summary per node (`nodes[]`: model, kind, counts, rows, duration_ms.total) and lists only
 * the units that did not succeed (`results`); version 1 listed every unit in `results`.
 */

export type RunStatus = 'success' | 'error' | 'skipped' | 'interrupted';

export interface DocsPracticeRun {
  tenant: string;
  status: RunStatus;
  rows?: number;
  duration_ms?: number;
  message?: string;
}

export interface DocsNodeRun {
  /** Worst status of its builds: error, interrupted, skipped, else success. */
  status: RunStatus;
  /** Builds per status (one per practice for a tenant-scoped model, one for a global one). */
  counts: Record<RunStatus, number>;
  /** Rows written, summed over practices, when the run recorded them. */
  rows?: number;
  duration_ms?: number;
  /** Failing tests of this node (count of test results with status error). */
  failed_tests: number;
  /** Per practice: every one that did not succeed, then successes up to a bound (the site stays small at 5,000 practices). */
  practices: DocsPracticeRun[];
  /** Successful practices left out of `practices`. */
  more_practices: number;
}

export interface DocsLastRun {
  command?: string;
  run_id?: string;
  target?: string;
  finished_at?: string;
  nodes: Record<string, DocsNodeRun>;
}

const STATUSES: readonly RunStatus[] = ['success', 'error', 'skipped', 'interrupted'];
const RANK: Record<RunStatus, number> = { success: 0, skipped: 1, interrupted: 2, error: 3 };
/** Successful practices listed per model; the others are counted. */
export const LISTED_SUCCESSES = 50;

const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
const count = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function summarizeLastRun(doc: unknown): DocsLastRun | undefined {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return undefined;
  const run = doc as Record<string, unknown>;
  const out: DocsLastRun = {
    ...(text(run.command) ? { command: text(run.command) } : {}),
    ...(text(run.run_id) ? { run_id: text(run.run_id) } : {}),
    ...(text(run.target) ? { target: text(run.target) } : {}),
    ...(text(run.finished_at) ? { finished_at: text(run.finished_at) } : {}),
    nodes: {},
  };
  if (Array.isArray(run.nodes)) return fromNodeSummaries(out, run.nodes as unknown[], Array.isArray(run.results) ? (run.results as unknown[]) : []);
  if (!Array.isArray(run.results)) return out;
  const successes = new Map<string, DocsPracticeRun[]>();
  for (const raw of run.results as unknown[]) {
    if (raw === null || typeof raw !== 'object') continue;
    const r = raw as Record<string, unknown>;
    const model = text(r.model);
    const status = text(r.status) as RunStatus | undefined;
    if (!model || !status || !STATUSES.includes(status)) continue;
    const node = (out.nodes[model] ??= { status: 'success', counts: { success: 0, error: 0, skipped: 0, interrupted: 0 }, failed_tests: 0, practices: [], more_practices: 0 });
    if (r.kind === 'test') {
      if (status === 'error') node.failed_tests++;
      continue;
    }
    node.counts[status]++;
    if (RANK[status] > RANK[node.status]) node.status = status;
    const rows = count(r.rows);
    const ms = count(r.duration_ms);
    if (rows !== undefined) node.rows = (node.rows ?? 0) + rows;
    if (ms !== undefined) node.duration_ms = (node.duration_ms ?? 0) + ms;
    const tenant = text(r.tenant);
    if (!tenant) continue;
    const entry: DocsPracticeRun = { tenant, status, ...(rows !== undefined ? { rows } : {}), ...(ms !== undefined ? { duration_ms: ms } : {}), ...(status !== 'success' && text(r.message) ? { message: text(r.message) } : {}) };
    if (status !== 'success') node.practices.push(entry);
    else successes.set(model, [...(successes.get(model) ?? []), entry]);
  }
  for (const [model, node] of Object.entries(out.nodes)) {
    const ok = (successes.get(model) ?? []).sort((a, b) => a.tenant.localeCompare(b.tenant));
    node.practices.sort((a, b) => RANK[b.status] - RANK[a.status] || a.tenant.localeCompare(b.tenant));
    node.practices.push(...ok.slice(0, LISTED_SUCCESSES));
    node.more_practices = Math.max(0, ok.length - LISTED_SUCCESSES);
  }
  return out;
}

const emptyRun = (): DocsNodeRun => ({ status: 'success', counts: { success: 0, error: 0, skipped: 0, interrupted: 0 }, failed_tests: 0, practices: [], more_practices: 0 });

/** Version 2: counts, rows and time per node from its summary; the practices that did not succeed from `results`. */
function fromNodeSummaries(out: DocsLastRun, nodes: unknown[], results: unknown[]): DocsLastRun {
  for (const raw of nodes) {
    if (raw === null || typeof raw !== 'object') continue;
    const n = raw as Record<string, unknown>;
    const model = text(n.model);
    const counts = (n.counts ?? {}) as Record<string, unknown>;
    if (!model) continue;
    const node = (out.nodes[model] ??= emptyRun());
    if (n.kind === 'test') {
      node.failed_tests += count(counts.error) ?? 0;
      continue;
    }
    for (const s of STATUSES) {
      node.counts[s] += count(counts[s]) ?? 0;
      if (node.counts[s] > 0 && RANK[s] > RANK[node.status]) node.status = s;
    }
    const rows = count(n.rows);
    const ms = count(((n.duration_ms ?? {}) as Record<string, unknown>).total);
    if (rows !== undefined) node.rows = (node.rows ?? 0) + rows;
    if (ms !== undefined) node.duration_ms = (node.duration_ms ?? 0) + ms;
  }
  for (const raw of results) {
    if (raw === null || typeof raw !== 'object') continue;
    const r = raw as Record<string, unknown>;
    const model = text(r.model);
    const tenant = text(r.tenant);
    const status = text(r.status) as RunStatus | undefined;
    if (!model || !tenant || !status || status === 'success' || !STATUSES.includes(status) || r.kind === 'test' || !out.nodes[model]) continue;
    const ms = count(r.duration_ms);
    out.nodes[model]!.practices.push({ tenant, status, ...(ms !== undefined ? { duration_ms: ms } : {}), ...(text(r.message) ? { message: text(r.message) } : {}) });
  }
  for (const node of Object.values(out.nodes)) {
    node.practices.sort((a, b) => RANK[b.status] - RANK[a.status] || a.tenant.localeCompare(b.tenant));
    // The compact file keeps successes as counts only.
    node.more_practices = node.counts.success;
  }
  return out;
}
