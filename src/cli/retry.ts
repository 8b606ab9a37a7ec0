import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Codes, TsformError } from '../errors.ts';
import type { Command as PlanCommand } from '../plan/plan.ts';

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
  const command = run.command as PlanCommand;
  if (!COMMANDS.has(command)) throw new TsformError(Codes.nothingToRetry, `cannot retry: ${path} records no run, seed, test or build (command ${JSON.stringify(run.command ?? null)})`);
  if (!Array.isArray(run.results)) throw new TsformError(Codes.nothingToRetry, `cannot retry: ${path} has no results list this version reads`);
  const nodes = new Set<string>();
  const tenants = new Set<string>();
  const allTenants = new Set<string>();
  let global = false;
  let redo = 0;
  for (const r of run.results as unknown[]) {
    const { model, tenant, status } = (r ?? {}) as Record<string, unknown>;
    if (typeof tenant === 'string') allTenants.add(tenant);
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
  };
}

/** One line saying what the retry runs again and what it leaves alone. */
export function retryLine(p: RetryPlan): string {
  const practices = p.tenants.length > 0 ? ` for ${p.tenants.length} practice(s)` : '';
  const kept = p.succeededTenants > 0 ? `; ${p.succeededTenants} practice(s) that succeeded are not re-run` : '';
  return `retry: ${p.redo} node(s) failed, were skipped or interrupted in the last ${p.command}${p.runId ? ` (${p.runId})` : ''}: running ${p.nodes.length} model(s) again${practices}${kept}`;
}
