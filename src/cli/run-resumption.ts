import { Codes, TsformError } from '../errors.ts';
import type { OpenRun, RunChoice } from '../adapters/job-queue.ts';

/**
 * How long after its coordinator was last seen an unfinished distributed run may still be
 * resumed by a coordinator started with the same selection. A restart (a crash, a redeploy, a
 * Ctrl-C and the same command again) falls within it; a run started again later is a new run,
 * since what completed before may no longer match the sources.
 */
export const RESUME_WINDOW_SECONDS = 120;

export interface ResumeRule {
  /** The selection's identity: command, compiled project, steps, practices (and a full refresh). */
  key: string;
  /** The id a new run gets. */
  newRunId: string;
  /** `--resume <run id>`: this run, however long ago its coordinator stopped. */
  resume?: string;
  resumeWithinSeconds: number;
}

/**
 * Which run a coordinator serves, given the project's unfinished runs: the one of its selection
 * a live coordinator serves (joined: two coordinators started together share one run); else the
 * one of its selection whose coordinator stopped within the window, or the one `--resume` names
 * (resumed); else a new one. Every other unfinished run whose coordinator is gone is closed as
 * abandoned: nobody collects its jobs any more, and a queued one handed to a worker of a changed
 * project would be refused (TSF461) and stop that worker.
 */
export function chooseRun(found: readonly OpenRun[], rule: ResumeRule): RunChoice {
  // A session that holds the lock but has not renewed `last_seen_at` for the whole window is a
  // coordinator whose host vanished (PostgreSQL ends it only at TCP keepalive): gone, not live.
  const open = found.map((r) => ({ ...r, live: r.live && r.silentForSeconds <= rule.resumeWithinSeconds }));
  const latestFirst = [...open].sort((a, b) => a.silentForSeconds - b.silentForSeconds);
  const chosen = rule.resume !== undefined ? named(latestFirst, rule) : latestFirst.find((r) => r.key === rule.key && (r.live || r.silentForSeconds <= rule.resumeWithinSeconds));
  const abandon = latestFirst.filter((r) => !r.live && r.runId !== chosen?.runId).map((r) => r.runId);
  if (!chosen) return { runId: rule.newRunId, mode: 'new', abandon };
  return { runId: chosen.runId, mode: chosen.live ? 'joined' : 'resumed', abandon, silentForSeconds: chosen.silentForSeconds };
}

function named(open: readonly OpenRun[], rule: ResumeRule): OpenRun {
  const run = open.find((r) => r.runId === rule.resume);
  if (!run) throw new TsformError(Codes.resumeRefused, `--resume ${rule.resume}: not an unfinished distributed run of this project (finished, closed as abandoned, or unknown); run without --resume to start a new run`);
  if (run.key !== rule.key) {
    throw new TsformError(Codes.resumeRefused, `--resume ${rule.resume}: that run was planned with another command, selection, compiled project or tenants.yml; run without --resume to start a new run`);
  }
  return run;
}

/** What the coordinator says about the run it serves and the runs it closed (run_results.json notices). */
export function runChoiceNotices(opened: RunChoice & { cancelledJobs: number }, rule: ResumeRule): string[] {
  const out: string[] = [];
  if (opened.abandon.length > 0) {
    out.push(
      `closed ${opened.abandon.length} unfinished distributed run(s) whose coordinator was gone (${opened.abandon.join(', ')}): ${opened.cancelledJobs} job(s) not yet taken were cancelled, and none of their results is reported here`,
    );
  }
  const silent = `${opened.silentForSeconds ?? 0} s`;
  if (opened.mode === 'joined') out.push(`joined distributed run ${opened.runId}, which another coordinator serves: jobs already sent were not sent again`);
  if (opened.mode === 'resumed') {
    const why = rule.resume ? 'named by --resume' : `within the ${rule.resumeWithinSeconds} s a stopped run stays resumable`;
    out.push(`resumed distributed run ${opened.runId}, whose coordinator stopped ${silent} ago (${why}): jobs already sent were not sent again, and those that had ended report their results as they were`);
  }
  return out;
}
