import { createHash } from 'node:crypto';
import type { NodeResult } from '../artifacts/run-results.ts';
import type { Manifest } from '../artifacts/manifest.ts';
import type { Command, FanInPolicy } from '../plan/plan.ts';

/** What the coordinator puts in a job, and what a worker completes it with. */

export interface PracticeJobData {
  runId: string;
  /** tsform version and compiled-project fingerprint the job was planned with; a worker with others refuses it. */
  tsform: string;
  manifest: string;
  command: Command;
  /** Plan step ids: every per-practice step of the run (distribute.ts). */
  nodes: string[];
  tenants: string[];
  wholeRun: boolean;
  /** `--full-refresh`: the job rebuilds its practices' slices from the full SELECT. */
  fullRefresh?: true;
  /**
   * A refresh over every practice: the coordinator's record of the tables not created again yet
   * (execute/full-refresh.ts); the job's first write of each creates it, keeping other practices' rows.
   */
  fullRefreshId?: string;
  fanIn?: FanInPolicy;
  vars?: Record<string, unknown>;
}

export interface PracticeJobOutput {
  worker: string;
  results: NodeResult[];
  notices: string[];
  alerts: { kind: string; tenant: string; message: string }[];
  needsAction: string[];
  /** Set when the job failed as a whole (no results): the reason, with its code. */
  error?: { code?: string; message: string };
}

/** What a job is failed with when it has no results: the reason, for the run's record. */
export function failedOutput(worker: string, error: { code?: string; message: string }): PracticeJobOutput {
  return { worker, results: [], notices: [], alerts: [], needsAction: [], error };
}

/** One queue per pool: a `--pool backfill` worker serves that queue alone. */
export function queueName(project: string, pool: string): string {
  return `tsform_${project}_${pool}`.replace(/[^\w-]/g, '_');
}

/**
 * The compiled project (models, configs, sources, tests, tenants). The manifest holds no
 * absolute path or time, so two checkouts of one commit agree and any changed model does not.
 */
export function manifestFingerprint(manifest: Manifest): string {
  return createHash('sha256').update(JSON.stringify(manifest)).digest('hex').slice(0, 16);
}

/** A job id the same for the same run and batch, so that a restarted coordinator sends nothing twice. */
export function jobId(runId: string, key: string): string {
  const h = createHash('sha256').update(`${runId}\u0000${key}`).digest('hex');
  // RFC 4122 layout (version 5-like, variant 10) so that pg-boss's uuid column takes it.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}
