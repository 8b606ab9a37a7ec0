import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobQueue } from '../adapters/job-queue.ts';
import { manifestNodes } from '../artifacts/manifest.ts';
import { RUN_RESULTS_SCHEMA_VERSION, summarizeTenants, type NodeResult, type RunResults } from '../artifacts/run-results.ts';
import { writeRunResults } from '../artifacts/write.ts';
import { systemClock } from '../clock.ts';
import { Codes, TsformError } from '../errors.ts';
import { beginFullRefresh, endFullRefresh, refreshTargets } from '../execute/full-refresh.ts';
import { distributePlan, type PracticeJob } from '../plan/distribute.ts';
import { plannedUnits } from '../plan/units.ts';
import { runWorkspace } from './api.ts';
import { failedOutput, jobId, manifestFingerprint, queueName, type PracticeJobData, type PracticeJobOutput } from './distributed-jobs.ts';
import { tsformVersion } from './package-root.ts';
import type { RunRequest } from './run-request.ts';
import { LEAK_SCAN, leakScanNotRun, leakScanPlanned, leakScanResult } from './run-record.ts';
import { chooseRun, RESUME_WINDOW_SECONDS, runChoiceNotices } from './run-resumption.ts';
import { unreportedUnits } from '../execute/interrupted-units.ts';
import { prepareSlimCi, refuseNoPractices } from './slim-ci.ts';
import { openAdapter, resolveTarget } from './target.ts';

export interface DistributedOptions {
  /** Jobs waiting in each pool's queue at once; the rest wait here, so the order stays tsform's (default 2). */
  queueDepth?: number;
  /** Times a job is offered again after a failure or a dead worker (default 2). */
  retryLimit?: number;
  /** The queue fails an active job after this long: the backstop for a hung worker (default 2 h). */
  jobExpirySeconds?: number;
  pollMs?: number;
  onJob?: (e: { job: string; tenants: string[]; state: 'sent' | 'completed' | 'failed' | 'requeued' }) => void;
  /** `--resume <run id>`: serve this unfinished run however long ago its coordinator stopped (TSF462 when it cannot be). */
  resume?: string;
  /** A run whose coordinator stopped longer ago than this is not resumed but closed (default RESUME_WINDOW_SECONDS). */
  resumeWithinSeconds?: number;
  openQueue?: (url: string) => Promise<JobQueue>;
}

interface Tracked {
  job: PracticeJob;
  id: string;
  queue: string;
  sentAt: number;
  /** The queue has it active (a worker took it). */
  active: boolean;
  /** When it was first seen active with no worker's claim. */
  unclaimedSince?: number;
  /** It had ended before this coordinator took over the run: its results are an earlier coordinator's. */
  endedBefore?: boolean;
}

const ENDED: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);

/** A job active this long with no claim lost its worker between taking it and claiming it. */
const UNCLAIMED_GRACE_MS = 30_000;

/**
 * `tsform run --distributed`: the coordinator. It runs the steps that run once itself (before
 * and after the practices' work), feeds the practices' jobs to the queue, at most `queueDepth`
 * waiting per pool and least-served pool first, fails the job of a worker that died so that
 * another takes it, and writes one run_results.json for the whole run. Which run it serves is
 * run-resumption.ts's rule: it joins a run of its selection that another coordinator serves,
 * resumes one whose coordinator stopped moments ago (or the one `--resume` names), and otherwise
 * starts afresh, closing the runs nobody serves. Every planned unit it did not run is reported
 * as such (interrupted or skipped), so that `tsform retry` runs it.
 */
export async function runDistributed(req: RunRequest, o: DistributedOptions = {}): Promise<RunResults> {
  const env = req.env ?? process.env;
  const clock = req.clock ?? systemClock;
  // --defer reads production from a DuckDB file beside this process (slim CI); workers share a PostgreSQL warehouse instead.
  if (req.defer) throw new TsformError(Codes.unsupported, '--distributed with --defer is not supported: --defer is for a CI build against a production DuckDB file, run it in one process');
  const { ws, plan } = prepareSlimCi(req);
  refuseNoPractices(ws, req.command);
  const target = resolveTarget(ws.project, req.target);
  if (target.type !== 'postgres') throw new TsformError(Codes.unsupported, `--distributed needs a PostgreSQL target (workers share the warehouse and its queue); '${target.name}' is ${target.type}`);
  const url = env[target.urlEnv];
  if (!url) throw new TsformError(Codes.missingEnv, `target '${target.name}' reads its connection URL from $${target.urlEnv}, which is not set`);
  const cut = distributePlan(plan);
  const fingerprint = manifestFingerprint(ws.manifest);
  const startedAt = clock.now();
  const queue = await (o.openQueue ?? defaultQueue)(url);
  const adapter = await openAdapter(ws.project, target, { threads: req.threads, env });
  const wholeRun = !req.select?.length && !req.exclude?.length;
  const leakScan = leakScanPlanned(ws, plan);
  /** Why the units no result reports were not run, when it is not an interruption. */
  let notRun = 'no job reported a result for it';
  const results: NodeResult[] = [];
  const notices: string[] = [];
  const alerts: RunResults['alerts'] = [];
  const needsAction: string[] = [];
  try {
    // A full refresh is another run than the nightly one of the same selection: it never resumes it.
    const key = createHash('sha256')
      .update(JSON.stringify([req.command, fingerprint, plan.steps.map((s) => s.id), plan.tenants, ...(req.fullRefresh ? ['full-refresh'] : [])]))
      .digest('hex');
    const rule = { key, newRunId: randomUUID(), resume: o.resume, resumeWithinSeconds: o.resumeWithinSeconds ?? RESUME_WINDOW_SECONDS };
    const opened = await queue.openRun({ project: ws.project.config.name, key }, (open) => chooseRun(open, rule));
    const runId = opened.runId;
    const resumed = opened.mode !== 'new';
    notices.push(...runChoiceNotices(opened, rule));
    req.onPlan?.(plan, plannedUnits(plan, { checks: leakScan ? 1 : 0 }));
    // The steps it runs itself report to nobody: the announced plan is this run's, not theirs.
    const base = { ...req, adapter, env, clock, skipLeakScan: true, onPlan: undefined };
    const ids = cut.jobs.map((j) => jobId(runId, j.key));
    const alreadySent = resumed && cut.jobs.length > 0 && (await queue.status(queueName(ws.project.config.name, cut.jobs[0]!.pool), ids[0]!)) !== undefined;
    // As one process does, the refresh is recorded once, before any practice is rebuilt; never
    // again once a job may have written (a resumed run keeps what the first one recorded and
    // rebuilt), and the first job to write each table creates it again (execute/full-refresh.ts).
    const refreshesAll = plan.fullRefresh && plan.fullRefreshScope === 'all';
    if (refreshesAll && !alreadySent) await beginFullRefresh(adapter, ws.project.config.schemas.meta, runId, refreshTargets(plan, manifestNodes(ws.manifest), new Set(cut.perPractice)));
    if (cut.before.length > 0 && !alreadySent) {
      const before = await runWorkspace({ ...base, nodes: cut.before, select: undefined, exclude: undefined });
      results.push(...before.results);
      notices.push(...(before.notices ?? []));
      if (before.results.some((r) => r.status === 'error')) {
        notRun = `a step every practice reads failed (${before.results.filter((r) => r.status === 'error').map((r) => r.node).join(', ')})`;
        notices.push(`per-practice work not started: ${notRun}`);
        return await finish();
      }
    } else if (alreadySent) {
      // The coordinator that sent the jobs built them, and sends none after a failure there.
      results.push(...cut.before.map((id) => builtEarlier(id)));
    }
    const queues = [...new Set(cut.jobs.map((j) => queueName(ws.project.config.name, j.pool)))];
    await queue.ensureQueues(queues);
    const outputs = await feed(queue, cut.jobs, ids, {
      project: ws.project.config.name,
      data: (job) => ({
        runId,
        tsform: tsformVersion(),
        manifest: fingerprint,
        command: req.command,
        nodes: cut.perPractice,
        tenants: job.tenants,
        wholeRun,
        ...(plan.fullRefresh ? { fullRefresh: true as const } : {}),
        ...(refreshesAll ? { fullRefreshId: runId } : {}),
        fanIn: req.fanIn,
        vars: req.vars,
      }),
      depth: o.queueDepth ?? 2,
      retryLimit: o.retryLimit ?? 2,
      expirySeconds: o.jobExpirySeconds ?? 7200,
      pollMs: o.pollMs ?? 250,
      signal: req.signal,
      onJob: o.onJob,
    });
    const failedTenants = new Set<string>();
    for (const { job, output } of outputs) {
      if (output.error || output.results.length === 0) {
        for (const t of job.tenants) failedTenants.add(t);
        results.push(...jobFailed(job, cut.perPractice, output.error?.message ?? 'the job failed without results', output.error?.code));
      } else {
        results.push(...output.results);
        for (const r of output.results) if (r.status === 'error' && r.tenant) failedTenants.add(r.tenant);
      }
      notices.push(...output.notices);
      alerts.push(...output.alerts);
      needsAction.push(...output.needsAction);
    }
    if (cut.after.length > 0 && !req.signal?.aborted) {
      const fanIn = req.fanIn ?? 'use_last_good';
      if (failedTenants.size > 0 && fanIn !== 'use_last_good') {
        const why = `${failedTenants.size} practice(s) failed upstream and the fan-in policy is '${fanIn}'`;
        for (const id of cut.after) results.push(onceResult(id, fanIn === 'block' ? 'error' : 'skipped', why, [...failedTenants].sort()));
      } else {
        const after = await runWorkspace({ ...base, nodes: cut.after, select: undefined, exclude: undefined });
        const stale = [...failedTenants].sort();
        results.push(...after.results.map((r) => (stale.length > 0 && r.tenant === null && r.kind === 'build' ? { ...r, stale_tenants: stale } : r)));
        notices.push(...(after.notices ?? []));
      }
    }
    const privacy = ws.project.config.privacy;
    if (privacy && leakScan && !req.signal?.aborted) results.push(await leakScanResult(adapter, ws, privacy));
    // An interrupted run stays open: a coordinator of this selection started again soon resumes it.
    if (!req.signal?.aborted) {
      if (refreshesAll) await endFullRefresh(adapter, ws.project.config.schemas.meta, runId);
      await queue.finishRun(runId);
    }
    return await finish();
  } finally {
    await adapter.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
  }

  async function finish(): Promise<RunResults> {
    const why = req.signal?.aborted ? { status: 'interrupted' as const, reason: 'the distributed run was stopped before this ran' } : { status: 'skipped' as const, reason: notRun };
    results.push(...unreportedUnits(plan, results, why));
    if (leakScan && !results.some((r) => r.node === LEAK_SCAN)) results.push(leakScanNotRun(why));
    const finishedAt = clock.now();
    const run: RunResults = {
      schema_version: RUN_RESULTS_SCHEMA_VERSION,
      run_id: randomUUID(),
      command: req.command,
      target: target.name,
      started_at: startedAt.toISOString(),
      finished_at: finishedAt.toISOString(),
      elapsed_ms: finishedAt.getTime() - startedAt.getTime(),
      results,
      tenants: summarizeTenants(results, plan.tenants),
      alerts,
      ...(notices.length > 0 ? { notices: [...new Set(notices)] } : {}),
      ...(needsAction.length > 0 ? { needs_action: [...new Set(needsAction)] } : {}),
      ...(req.signal?.aborted ? { interrupted: true } : {}),
    };
    writeRunResults(ws.targetDir, run);
    return run;
  }
}

interface FeedOptions {
  project: string;
  data: (job: PracticeJob) => PracticeJobData;
  depth: number;
  retryLimit: number;
  expirySeconds: number;
  pollMs: number;
  signal?: AbortSignal;
  onJob?: DistributedOptions['onJob'];
}

/**
 * Keeps each pool's queue shallow and fills it least-served pool first (service: the seconds of
 * its jobs finished so far), in plan order within a pool. Polls the jobs it sent; a job whose
 * worker is gone is failed so that the queue offers it again.
 */
async function feed(queue: JobQueue, jobs: readonly PracticeJob[], ids: readonly string[], f: FeedOptions): Promise<{ job: PracticeJob; output: PracticeJobOutput }[]> {
  const pending = new Map<string, { job: PracticeJob; id: string }[]>();
  jobs.forEach((job, i) => {
    const list = pending.get(job.pool) ?? [];
    list.push({ job, id: ids[i]! });
    pending.set(job.pool, list);
  });
  const service = new Map<string, number>([...pending.keys()].map((p) => [p, 0]));
  const inFlight = new Map<string, Tracked>();
  const done: { job: PracticeJob; output: PracticeJobOutput }[] = [];
  const waiting = (pool: string) => [...inFlight.values()].filter((t) => t.job.pool === pool && !t.active).length;
  while (pending.size > 0 || inFlight.size > 0) {
    if (f.signal?.aborted && inFlight.size === 0) break;
    // top up, least-served pool first
    for (const pool of [...pending.keys()].sort((a, b) => service.get(a)! - service.get(b)!)) {
      const list = pending.get(pool)!;
      while (!f.signal?.aborted && list.length > 0 && waiting(pool) < f.depth) {
        const next = list.shift()!;
        const q = queueName(f.project, pool);
        const existing = await queue.status(q, next.id);
        if (!existing) await queue.sendOnce(q, next.id, f.data(next.job), { retryLimit: f.retryLimit, expireInSeconds: f.expirySeconds });
        const endedBefore = existing !== undefined && ENDED.has(existing.state);
        inFlight.set(next.id, { job: next.job, id: next.id, queue: q, sentAt: Date.now(), active: false, endedBefore });
        f.onJob?.({ job: next.id, tenants: next.job.tenants, state: 'sent' });
      }
      if (list.length === 0) pending.delete(pool);
    }
    await sleep(f.pollMs);
    const active: string[] = [];
    for (const t of [...inFlight.values()]) {
      const s = await queue.status(t.queue, t.id);
      if (!s) continue;
      t.active = s.state === 'active';
      if (s.state === 'active') active.push(t.id);
      if (ENDED.has(s.state)) {
        inFlight.delete(t.id);
        service.set(t.job.pool, (service.get(t.job.pool) ?? 0) + (Date.now() - t.sentAt) / 1000);
        const output = (s.output ?? {}) as Partial<PracticeJobOutput>;
        const reported = (output.results ?? []).map((r) => (t.endedBefore ? { ...r, notes: [...(r.notes ?? []), 'from a job of this run that ended before its coordinator restarted'] } : r));
        const complete: PracticeJobOutput = { worker: output.worker ?? '', results: reported, notices: output.notices ?? [], alerts: output.alerts ?? [], needsAction: output.needsAction ?? [], error: output.error ?? (s.state === 'completed' ? undefined : { message: `job ${s.state} after ${s.retryCount} retries` }) };
        done.push({ job: t.job, output: complete });
        f.onJob?.({ job: t.id, tenants: t.job.tenants, state: s.state === 'completed' ? 'completed' : 'failed' });
      }
    }
    const unclaimed = new Set(await queue.unclaimed(active));
    const lost = [...(await queue.reapGone(active))];
    for (const id of active) {
      const t = inFlight.get(id)!;
      if (!unclaimed.has(id)) t.unclaimedSince = undefined;
      else if ((t.unclaimedSince ??= Date.now()) < Date.now() - UNCLAIMED_GRACE_MS) lost.push(id);
    }
    for (const id of lost) {
      const t = inFlight.get(id)!;
      t.unclaimedSince = undefined;
      await queue.fail(t.queue, id, failedOutput('', { code: Codes.connection, message: 'its worker died; offered again' }));
      f.onJob?.({ job: id, tenants: t.job.tenants, state: 'requeued' });
    }
  }
  return done;
}

function jobFailed(job: PracticeJob, nodes: readonly string[], message: string, code?: string): NodeResult[] {
  return job.tenants.flatMap((tenant) =>
    nodes.map((model) => ({ node: `${model}@${tenant}`, model, tenant, kind: 'build' as const, status: 'error' as const, rows: null, duration_ms: 0, message, code: code ?? Codes.sqlError })),
  );
}

function builtEarlier(model: string): NodeResult {
  return { node: model, model, tenant: null, kind: 'build', status: 'success', rows: null, duration_ms: 0, message: null, notes: ['built by the coordinator that started this run, before it was resumed'] };
}

function onceResult(model: string, status: 'error' | 'skipped', message: string, stale: string[]): NodeResult {
  return { node: model, model, tenant: null, kind: 'build', status, rows: null, duration_ms: 0, message, code: Codes.upstreamFailed, stale_tenants: stale };
}

async function defaultQueue(url: string): Promise<JobQueue> {
  const { openPgBossQueue } = await import('../adapters/postgres/pg-boss-queue.ts');
  return openPgBossQueue({ url, schema: 'tsform_queue', applicationName: 'tsform-coordinator', maintenance: true });
}
