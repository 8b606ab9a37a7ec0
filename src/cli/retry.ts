import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Codes, TsformError } from '../errors.ts';
import { downstreamOf, type ModelDag } from '../graph/dag.ts';
import { fansOut, type Command as PlanCommand } from '../plan/plan.ts';
import { readRunStarted, stillRunning } from '../artifacts/run-started.ts';

/** What `tsform retry` runs again, read from the last run_results.json. */
export interface RetryPlan {
  command: PlanCommand;
  /** The target the last run used (the retry's default). */
  target?: string;
  runId?: string;
  /** Nodes (manifest ids) to run again: every one that failed, was skipped or was interrupted. */
  nodes: string[];
  /** Practices that had such a node; practices whose every node succeeded are not re-run. */
  tenants: string[];
  /** A node run once for all practices (a global model) failed: it runs again too. */
  global: boolean;
  /** Practices of the last run that succeeded (not re-run). */
  succeededTenants: number;
  /** (node, practice) pairs that failed, were skipped or interrupted. */
  redo: number;
  /** Steps run once whose result listed practices read as last built (`stale_tenants`). */
  stale: string[];
  /** Every node the last run had (a retry runs nothing the run had not selected). */
  lastRun: string[];
}

const RETRIED = new Set(['error', 'skipped', 'interrupted']);
const COMMANDS = new Set<PlanCommand>(['run', 'seed', 'test', 'build']);

/**
 * Reads only fields run_results.json has had since version 1 (`command`, `target`, `run_id`, and
 * per result `model`, `tenant`, `status`), and each defensively: the file is an artifact another
 * version (or a person) may have written. Anything it cannot read is TSF307, never a guess.
 */
export function readRetryPlan(targetDir: string): RetryPlan {
  const path = join(targetDir, 'run_results.json');
  if (!existsSync(path)) throw new TsformError(Codes.nothingToRetry, `nothing to retry: no ${path} (run, seed, test or build first)`);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new TsformError(Codes.nothingToRetry, `cannot retry: ${path} is not valid JSON`);
  }
  const run = (doc ?? {}) as Record<string, unknown>;
  refuseUnfinishedRun(targetDir, run.run_id);
  const command = run.command as PlanCommand;
  if (!COMMANDS.has(command)) throw new TsformError(Codes.nothingToRetry, `cannot retry: ${path} records no run, seed, test or build (command ${JSON.stringify(run.command ?? null)})`);
  if (!Array.isArray(run.results)) throw new TsformError(Codes.nothingToRetry, `cannot retry: ${path} has no results list this version reads`);
  const nodes = new Set<string>();
  const tenants = new Set<string>();
  const allTenants = new Set<string>();
  const stale = new Set<string>();
  const lastRun = new Set<string>();
  let global = false;
  let redo = 0;
  // Version 2 lists every node of the run in `nodes`, its successes included; version 1 every unit in `results`.
  for (const n of Array.isArray(run.nodes) ? (run.nodes as unknown[]) : []) {
    const { model } = (n ?? {}) as Record<string, unknown>;
    if (typeof model === 'string') lastRun.add(model);
  }
  for (const r of run.results as unknown[]) {
    const { model, tenant, status, stale_tenants } = (r ?? {}) as Record<string, unknown>;
    if (typeof tenant === 'string') allTenants.add(tenant);
    if (typeof model === 'string') lastRun.add(model);
    if (typeof model === 'string' && tenant === null && Array.isArray(stale_tenants) && stale_tenants.length > 0) stale.add(model);
    if (typeof model !== 'string' || typeof status !== 'string' || !RETRIED.has(status)) continue;
    // Run-wide checks (the leak scan) are not nodes: they run again with what they check.
    if (model.includes(':') && !model.startsWith('source:')) continue;
    redo++;
    nodes.add(model);
    if (typeof tenant === 'string') tenants.add(tenant);
    else global = true;
  }
  for (const t of Object.keys((run.tenants ?? {}) as object)) allTenants.add(t);
  return {
    command,
    ...(typeof run.target === 'string' ? { target: run.target } : {}),
    ...(typeof run.run_id === 'string' ? { runId: run.run_id } : {}),
    nodes: [...nodes].sort(),
    tenants: [...tenants].sort(),
    global,
    succeededTenants: [...allTenants].filter((t) => !tenants.has(t)).length,
    redo,
    stale: [...stale].sort(),
    lastRun: [...lastRun].sort(),
  };
}

/**
 * A run that started after the one run_results.json records and wrote no results: still under
 * way, or stopped hard (kill -9, a second Ctrl-C). Retrying the run before it would say
 * "nothing to retry" while the stopped run's work is partly undone.
 */
function refuseUnfinishedRun(targetDir: string, recorded: unknown): void {
  const started = readRunStarted(targetDir);
  if (!started || started.run_id === recorded) return;
  if (stillRunning(started)) {
    throw new TsformError(Codes.nothingToRetry, `cannot retry yet: ${started.command} ${started.run_id} (process ${started.pid}) started at ${started.started_at} and is still running; retry after it ends`);
  }
  throw new TsformError(
    Codes.nothingToRetry,
    `cannot retry: the last ${started.command} (${started.run_id}, started at ${started.started_at}) was stopped before it wrote its results (killed, or a second Ctrl-C), so which of its nodes ran is not recorded; what it committed stays. Run that command again: its results then tell retry what is left`,
  );
}

/** What a retry selects, against the project as it is now. */
export interface RetrySelection {
  /** The nodes to run: what did not complete, then the steps run once that read it. */
  nodes: string[];
  /** Steps run once added because they read what is retried, or read a practice's last good slice. */
  readers: string[];
  /** Nodes to retry that are no longer in the project. */
  gone: string[];
}

/**
 * A step run once (global, shared, a view over every practice) reads every practice: when a
 * practice is retried, what such a step built on that practice's last good slice (or would
 * have built, had it not been skipped) is out of date, so the retry builds it again after the
 * practice, and the retry's run_results.json says what it read this time (a practice that
 * fails again stays in its `stale_tenants`). Only steps the last run had: a retry finishes that
 * run, it does not widen its selection. A `test` retry reads the relations as they are, so
 * nothing downstream changes and only the failed tests run again.
 */
export function retrySelection(p: RetryPlan, dag: ModelDag): RetrySelection {
  const { graph } = dag;
  const present = p.nodes.filter((id) => graph.hasNode(id));
  const gone = p.nodes.filter((id) => !graph.hasNode(id));
  if (p.command === 'test') return { nodes: present, readers: [], gone };
  const retried = new Set(present);
  const ran = new Set(p.lastRun);
  const staleHere = p.stale.filter((id) => graph.hasNode(id));
  const readers = [...new Set([...staleHere, ...downstreamOf(graph, [...present, ...staleHere])])]
    .filter((id) => ran.has(id) && !retried.has(id) && !fansOut(graph.getNodeAttribute(id, 'node')))
    .sort();
  return { nodes: [...present, ...readers], readers, gone };
}

/** One line saying what the retry runs again and what it leaves alone. */
export function retryLine(p: RetryPlan): string {
  const practices = p.tenants.length > 0 ? ` for ${p.tenants.length} practice(s)` : '';
  const kept = p.succeededTenants > 0 ? `; ${p.succeededTenants} practice(s) that succeeded are not re-run` : '';
  return `retry: ${p.redo} node(s) failed, were skipped or interrupted in the last ${p.command}${p.runId ? ` (${p.runId})` : ''}: running ${p.nodes.length} model(s) again${practices}${kept}`;
}

/** The steps run once that the retry builds again after what it retries, or undefined. */
export function readersLine(s: RetrySelection): string | undefined {
  if (s.readers.length === 0) return undefined;
  return `retry: then ${s.readers.length} step(s) run once that read them, over every practice: ${s.readers.join(', ')}`;
}
