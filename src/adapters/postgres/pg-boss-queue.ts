import pg from 'pg';
import PgBoss from 'pg-boss';
import { Codes, TsformError } from '../../errors.ts';
import { quoteRelation } from '../../sql/quote.ts';
import { sessionOptions, withSessionOptions } from './session-options.ts';
import type { JobQueue, JobState, JobStatus, QueuedJob, SendOptions } from '../job-queue.ts';
import { addRunColumns, coordinatorPresence } from './coordinator-presence.ts';

/**
 * JobQueue on pg-boss 10 (MIT; PostgreSQL only; Node >= 20 — pg-boss 11 and later need Node 22).
 * Chosen over graphile-worker (0.16/0.17 on Node 20): a hard-killed worker's jobs stay locked for
 * hours there, and 0.17's local queue breaks per-queue serialization (graphile/worker#621).
 * pg-boss gives ids we choose (a restarted coordinator re-sends nothing), retries, and expiry
 * as a backstop. Its per-group concurrency let one group's jobs overlap under load (measured:
 * docs/notes/cdc-and-queues.md), so tsform never relies on it: one writer per practice is
 * the warehouse's practice locks, and which job runs next is the coordinator's choice.
 */
export async function openPgBossQueue(opts: { url: string; schema: string; applicationName: string; maintenance: boolean }): Promise<JobQueue> {
  // pg-boss names its tables with their schema; its functions must be pg_catalog's
  // (session-options.ts). Its Db hands the whole config to pg.Pool, `options` included, though its
  // types do not list it.
  const config = {
    ...withSessionOptions(opts.url, sessionOptions([])),
    schema: opts.schema,
    application_name: opts.applicationName,
    max: 2,
    // Only the coordinator expires stalled jobs and keeps the tables small; workers just fetch.
    supervise: opts.maintenance,
    schedule: false,
    migrate: true,
  };
  const boss = new PgBoss(config);
  // A lost connection surfaces as a failed call; an 'error' event without a listener would crash the process.
  boss.on('error', () => undefined);
  await boss.start();
  const claims = quoteRelation(opts.schema, 'tsform_claims');
  const runs = quoteRelation(opts.schema, 'tsform_runs');
  // tsform's own bookkeeping beside pg-boss's tables: which worker took which job, and which
  // distributed runs are unfinished (coordinator-presence.ts). Created here, like pg-boss creates its own.
  await boss.getDb().executeSql(`CREATE TABLE IF NOT EXISTS ${claims} (job_id uuid PRIMARY KEY, worker text NOT NULL, claimed_at timestamptz NOT NULL DEFAULT now())`, []).catch(ignoreRace);
  await boss.getDb().executeSql(`CREATE TABLE IF NOT EXISTS ${runs} (run_id uuid PRIMARY KEY, run_key text NOT NULL, started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz)`, []).catch(ignoreRace);
  const sql = async (text: string, values: unknown[]) => (await boss.getDb().executeSql(text, values)) as { rows: Record<string, unknown>[] };
  await addRunColumns(sql, opts.schema, runs).catch(ignoreRace);
  const coordinator = coordinatorPresence(opts, runs);
  return {
    async ensureQueues(names) {
      for (const name of names) {
        if (!(await boss.getQueue(name))) await boss.createQueue(name).catch(async (err: unknown) => {
          // two processes creating the same queue at once: the loser finds it
          if (!(await boss.getQueue(name))) throw err;
        });
      }
    },
    async sendOnce(queue, id, data, o: SendOptions) {
      const sent = await boss.send(queue, data, { id, retryLimit: o.retryLimit, retryDelay: 0, expireInSeconds: o.expireInSeconds });
      return sent !== null;
    },
    async fetch<D>(queues: readonly string[]): Promise<QueuedJob<D> | undefined> {
      for (const queue of queues) {
        const [job] = await boss.fetch<D>(queue, { batchSize: 1 });
        if (job) return { queue, id: job.id, data: job.data };
      }
      return undefined;
    },
    async complete(queue, id, output) {
      await boss.complete(queue, id, output);
    },
    async fail(queue, id, output) {
      await boss.fail(queue, id, output);
    },
    async status(queue, id): Promise<JobStatus | undefined> {
      const job = await boss.getJobById(queue, id);
      if (!job) return undefined;
      return { state: job.state as JobState, output: job.output, retryCount: job.retryCount };
    },
    async register(workerId) {
      // A connection of its own, for the worker's whole life: its session lock is the presence.
      const client = new pg.Client({ ...withSessionOptions(opts.url, sessionOptions([])), application_name: `${opts.applicationName}:${workerId}`.slice(0, 63), keepAlive: true });
      client.on('error', () => undefined);
      await client.connect();
      const { rows } = await client.query("SELECT pg_try_advisory_lock(hashtext('tsform.worker'), hashtext($1)) AS ok", [workerId]);
      if (rows[0]?.ok !== true) {
        await client.end();
        throw new TsformError(Codes.workerIdTaken, `another live worker already runs as '${workerId}'; give each worker its own --worker-id`);
      }
      return { release: () => client.end() };
    },
    async claim(jobId, workerId) {
      await sql(`INSERT INTO ${claims} (job_id, worker) VALUES ($1, $2) ON CONFLICT (job_id) DO UPDATE SET worker = EXCLUDED.worker, claimed_at = now()`, [jobId, workerId]);
    },
    async reapGone(jobIds) {
      if (jobIds.length === 0) return [];
      const { rows } = await sql(
        `DELETE FROM ${claims} c
          WHERE c.job_id = ANY($1::uuid[])
            AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid::int = hashtext('tsform.worker') AND l.objid::int = hashtext(c.worker) AND l.granted)
         RETURNING c.job_id::text AS id`,
        [[...jobIds]],
      );
      return rows.map((r) => String(r.id));
    },
    async unclaimed(jobIds) {
      if (jobIds.length === 0) return [];
      const { rows } = await sql(`SELECT j::text AS id FROM unnest($1::uuid[]) AS j WHERE NOT EXISTS (SELECT 1 FROM ${claims} c WHERE c.job_id = j)`, [[...jobIds]]);
      return rows.map((r) => String(r.id));
    },
    openRun: coordinator.openRun,
    async finishRun(runId) {
      await sql(`UPDATE ${runs} SET finished_at = now(), last_seen_at = now(), outcome = 'finished' WHERE run_id = $1`, [runId]);
    },
    async runClosed(runId) {
      const { rows } = await sql(`SELECT finished_at IS NOT NULL AS closed FROM ${runs} WHERE run_id = $1`, [runId]);
      return rows[0]?.closed === true;
    },
    async close() {
      await coordinator.leave();
      await boss.stop({ graceful: false, wait: true });
    },
  };
}

/**
 * Two processes creating tsform's tables at once (two coordinators, or workers, on a fresh
 * warehouse): the loser finds them there. CREATE TABLE IF NOT EXISTS checks before it creates
 * the table's row type, so the loser may fail on the type (42710) or its catalog row (23505);
 * a column another process added meanwhile is 42701.
 */
function ignoreRace(err: unknown): void {
  const code = (err as { code?: string }).code;
  if (code !== '23505' && code !== '42P07' && code !== '42710' && code !== '42701') throw err;
}
