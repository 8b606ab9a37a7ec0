import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Adapter } from '../adapters/adapter.ts';
import type { JobQueue } from '../adapters/job-queue.ts';
import { Codes, TsformError } from '../errors.ts';
import { runWorkspace } from './api.ts';
import { compileWorkspace } from './compile-stage.ts';
import { failedOutput, manifestFingerprint, queueName, type PracticeJobData, type PracticeJobOutput } from './distributed-jobs.ts';
import type { Env } from './env.ts';
import { tsformVersion } from './package-root.ts';
import { openAdapter, resolveTarget } from './target.ts';
import { classifyPgError } from '../adapters/pg-errors.ts';
import { safeDbMessage } from '../adapters/safe-message.ts';

export interface WorkerOptions {
  projectDir: string;
  target?: string;
  /** Serve only these pools (`--pool`); default every pool of tsform.yml. */
  pools?: string[];
  workerId?: string;
  threads?: number;
  env?: Env;
  /** Stop when no job came for this long (a batch worker); default: run until signalled. */
  exitWhenIdleMs?: number;
  /** Stop fetching; the job in hand finishes and is completed first. */
  signal?: AbortSignal;
  onEvent?: (e: WorkerEvent) => void;
  /** How long connection failures of the warehouse or the queue are retried before the worker gives up (default 5 minutes). */
  connectGiveUpMs?: number;
  /** Injected by tests; default: pg-boss in the target's database. */
  openQueue?: (url: string, applicationName: string) => Promise<JobQueue>;
}

export type WorkerEvent =
  | { kind: 'ready'; worker: string; queues: string[] }
  | { kind: 'job_start'; worker: string; job: string; tenants: string[]; at: number }
  | { kind: 'job_end'; worker: string; job: string; tenants: string[]; at: number; errors: number }
  | { kind: 'job_failed'; worker: string; job: string; at: number; message: string }
  | { kind: 'retrying'; worker: string; what: string; attempt: number; message: string };

const POLL_MS = 500;

/**
 * `tsform worker`: takes practice jobs of distributed runs from the queue in the PostgreSQL
 * warehouse and runs each as `tsform run --tenant <its practices>` would, restricted to the
 * run's per-practice steps. The warehouse's practice locks keep one writer per practice, and
 * the worker's presence lock lets the coordinator see it die.
 */
export async function runWorker(opts: WorkerOptions): Promise<{ jobs: number }> {
  const env = opts.env ?? process.env;
  const ws = compileWorkspace(opts.projectDir, { write: false });
  const target = resolveTarget(ws.project, opts.target);
  if (target.type !== 'postgres') throw new TsformError(Codes.unsupported, `tsform worker needs a PostgreSQL target (the queue lives in the warehouse); '${target.name}' is ${target.type}`);
  const url = env[target.urlEnv];
  if (!url) throw new TsformError(Codes.missingEnv, `target '${target.name}' reads its connection URL from $${target.urlEnv}, which is not set`);
  const workerId = opts.workerId ?? `${hostname()}:${process.pid}`;
  // A run planned with --vars compiled other SQL: the job's vars compile this checkout the same
  // way before the two are compared (compared without them, every such job was refused).
  const fingerprints = new Map<string, string>([['{}', manifestFingerprint(ws.manifest)]]);
  const fingerprintWith = (vars: Record<string, unknown> | undefined): string => {
    const key = JSON.stringify(vars ?? {});
    let known = fingerprints.get(key);
    if (known === undefined) {
      try {
        known = manifestFingerprint(compileWorkspace(opts.projectDir, { write: false, vars }).manifest);
      } catch (err) {
        known = `not compiled with the run's vars (${err instanceof TsformError ? err.code : 'error'})`;
      }
      fingerprints.set(key, known);
    }
    return known;
  };
  const pools = opts.pools ?? Object.keys(ws.project.config.pools);
  const unknown = pools.filter((p) => !(p in ws.project.config.pools));
  if (unknown.length > 0) throw new TsformError(Codes.badSelector, `--pool ${unknown.join(', ')}: tsform.yml declares pools ${Object.keys(ws.project.config.pools).join(', ')}`);
  const queues = pools.map((p) => queueName(ws.project.config.name, p));
  const reconnect = (what: string) => (attempt: number, err: unknown) =>
    opts.onEvent?.({ kind: 'retrying', worker: workerId, what, attempt, message: err instanceof TsformError ? err.message : safeDbMessage(err, 1) });
  const giveUp = opts.connectGiveUpMs ?? CONNECT_GIVE_UP_MS;
  const queue = await withBackoff(() => (opts.openQueue ?? defaultQueue)(url, 'tsform-worker'), reconnect('queue'), giveUp, opts.signal);
  let presence: { release(): Promise<void> } | undefined;
  let adapter: Adapter | undefined;
  let jobs = 0;
  try {
    presence = await queue.register(workerId);
    await queue.ensureQueues(queues);
    adapter = await withBackoff(() => openAdapter(ws.project, target, { threads: opts.threads, env }), reconnect('warehouse'), giveUp, opts.signal);
    opts.onEvent?.({ kind: 'ready', worker: workerId, queues });
    let idleSince = Date.now();
    while (!opts.signal?.aborted) {
      const job = await withBackoff(() => queue.fetch<PracticeJobData>(queues), reconnect('queue'), giveUp, opts.signal);
      if (!job) {
        if (opts.exitWhenIdleMs !== undefined && Date.now() - idleSince >= opts.exitWhenIdleMs) break;
        await sleep(POLL_MS);
        continue;
      }
      await queue.claim(job.id, workerId);
      const data = job.data;
      // Before the project check: a closed run's job may come from a project that has changed since.
      if (await queue.runClosed?.(data.runId)) {
        const message = `job of distributed run ${data.runId}, which was closed before this worker took it: not run`;
        await queue.fail(job.queue, job.id, failedOutput(workerId, { code: Codes.resumeRefused, message }));
        opts.onEvent?.({ kind: 'job_failed', worker: workerId, job: job.id, at: Date.now(), message });
        continue;
      }
      const own = fingerprintWith(data.vars);
      if (data.tsform !== tsformVersion() || data.manifest !== own) {
        const message = `worker ${workerId} runs tsform ${tsformVersion()} with project ${own}; the run was planned with tsform ${data.tsform} and project ${data.manifest}: refused`;
        await queue.fail(job.queue, job.id, failedOutput(workerId, { code: Codes.workerMismatch, message }));
        throw new TsformError(Codes.workerMismatch, message);
      }
      opts.onEvent?.({ kind: 'job_start', worker: workerId, job: job.id, tenants: data.tenants, at: Date.now() });
      let output: PracticeJobOutput;
      try {
        const run = await runWorkspace({
          projectDir: opts.projectDir,
          command: data.command,
          target: opts.target,
          nodes: data.nodes,
          nodesAreWholeRun: data.wholeRun,
          skipLeakScan: true,
          tenants: data.tenants,
          ...(data.fullRefresh ? { fullRefresh: true, fullRefreshSlicesOnly: true, fullRefreshId: data.fullRefreshId } : {}),
          fanIn: data.fanIn,
          vars: data.vars,
          adapter,
          env,
        });
        output = { worker: workerId, results: run.results, notices: run.notices ?? [], alerts: run.alerts ?? [], needsAction: run.needs_action ?? [] };
      } catch (err) {
        const message = err instanceof TsformError ? err.message : safeDbMessage(err, 1);
        opts.onEvent?.({ kind: 'job_failed', worker: workerId, job: job.id, at: Date.now(), message });
        await queue.fail(job.queue, job.id, failedOutput(workerId, { code: (err as { code?: string }).code, message }));
        idleSince = Date.now();
        continue;
      }
      await queue.complete(job.queue, job.id, output);
      jobs++;
      opts.onEvent?.({ kind: 'job_end', worker: workerId, job: job.id, tenants: data.tenants, at: Date.now(), errors: output.results.filter((r) => r.status === 'error').length });
      idleSince = Date.now();
    }
    return { jobs };
  } finally {
    await adapter?.close().catch(() => undefined);
    await presence?.release().catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
}

/**
 * A worker outlives short outages of the warehouse or the queue: connection failures are
 * retried with exponential backoff (1 s doubling to 30 s) for up to `connectGiveUpMs`, each
 * attempt reported; anything else, or a longer outage, ends the worker with the error.
 */
const CONNECT_GIVE_UP_MS = 5 * 60_000;

async function withBackoff<T>(fn: () => Promise<T>, onRetry: (attempt: number, err: unknown) => void, giveUpMs: number, signal?: AbortSignal): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const connection = (err as { code?: string }).code === Codes.connection || classifyPgError(err) === 'transient';
      if (!connection || signal?.aborted || Date.now() - started > giveUpMs) throw err;
      onRetry(attempt, err);
      await sleep(Math.min(30_000, 1000 * 2 ** (attempt - 1)));
    }
  }
}

async function defaultQueue(url: string, applicationName: string): Promise<JobQueue> {
  const { openPgBossQueue } = await import('../adapters/postgres/pg-boss-queue.ts');
  return openPgBossQueue({ url, schema: 'tsform_queue', applicationName, maintenance: false });
}
