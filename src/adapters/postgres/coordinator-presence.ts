import pg from 'pg';
import { quoteRelation } from '../../sql/quote.ts';
import type { OpenRun, RunChoice } from '../job-queue.ts';
import { sessionOptions, withSessionOptions } from './session-options.ts';

/** How often a live coordinator records that it is alive: the error in "stopped n seconds ago" after a kill -9. */
const HEARTBEAT_MS = 5_000;

type Sql = (text: string, values: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

/**
 * Columns of `tsform_runs` added after its first version: the project a run belongs to, when a
 * coordinator last served it, and how it ended ('finished' or 'abandoned'). Checked before any
 * ALTER, which would take the table's strongest lock on every worker's start.
 */
export async function addRunColumns(sql: Sql, schema: string, runs: string): Promise<void> {
  const { rows } = await sql(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'tsform_runs' AND column_name IN ('project', 'last_seen_at', 'outcome')`, [schema]);
  if (Number(rows[0]?.n) === 3) return;
  await sql(`ALTER TABLE ${runs} ADD COLUMN IF NOT EXISTS project text, ADD COLUMN IF NOT EXISTS last_seen_at timestamptz, ADD COLUMN IF NOT EXISTS outcome text`, []);
}

/**
 * A coordinator's hold on its distributed run: a shared session lock on the run's id, on a
 * connection of its own, so that a coordinator that dies (kill -9 included) is seen gone as soon
 * as its connection ends, and several coordinators of one run are all live; and `last_seen_at`,
 * renewed every few seconds, which says how long ago a run lost its last coordinator.
 */
export function coordinatorPresence(opts: { url: string; schema: string; applicationName: string }, runs: string) {
  const jobs = quoteRelation(opts.schema, 'job');
  let held: { client: pg.Client; runId: string; heartbeat: NodeJS.Timeout } | undefined;

  async function openRun(run: { project: string; key: string }, choose: (open: OpenRun[]) => RunChoice): Promise<RunChoice & { cancelledJobs: number }> {
    const client = new pg.Client({ ...withSessionOptions(opts.url, sessionOptions([])), application_name: `${opts.applicationName}:run`.slice(0, 63), keepAlive: true });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.query('BEGIN');
      // One coordinator of a project decides at a time: two started together must not both open a new run.
      await client.query("SELECT pg_advisory_xact_lock(hashtext('tsform.runs'), hashtext($1))", [run.project]);
      const { rows } = await client.query(
        `SELECT r.run_id::text AS id, r.run_key AS key,
                EXISTS (SELECT 1 FROM pg_locks l
                         WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                           AND l.classid::int = hashtext('tsform.coordinator') AND l.objid::int = hashtext(r.run_id::text)) AS live,
                extract(epoch FROM now() - coalesce(r.last_seen_at, r.started_at))::float8 AS silent
           FROM ${runs} r
          WHERE r.finished_at IS NULL AND (r.project = $1 OR r.project IS NULL)`,
        [run.project],
      );
      const choice = choose(rows.map((r) => ({ runId: String(r.id), key: String(r.key), live: r.live === true, silentForSeconds: Math.max(0, Math.round(Number(r.silent))) })));
      let cancelledJobs = 0;
      if (choice.abandon.length > 0) {
        await client.query(`UPDATE ${runs} SET finished_at = now(), outcome = 'abandoned' WHERE run_id = ANY($1::uuid[])`, [choice.abandon]);
        // pg-boss's own table, in this transaction: a job is cancelled exactly when its run is closed.
        // Active ones finish on their worker (each slice write is atomic); nobody reads their results.
        const cancelled = await client.query(`UPDATE ${jobs} SET state = 'cancelled', completed_on = now() WHERE data->>'runId' = ANY($1::text[]) AND state < 'active'`, [choice.abandon]);
        cancelledJobs = cancelled.rowCount ?? 0;
      }
      if (choice.mode === 'new') await client.query(`INSERT INTO ${runs} (run_id, run_key, project, last_seen_at) VALUES ($1, $2, $3, now())`, [choice.runId, run.key, run.project]);
      else await client.query(`UPDATE ${runs} SET last_seen_at = now(), project = $2 WHERE run_id = $1`, [choice.runId, run.project]);
      await client.query("SELECT pg_advisory_lock_shared(hashtext('tsform.coordinator'), hashtext($1))", [choice.runId]);
      await client.query('COMMIT');
      const heartbeat = setInterval(() => void client.query(`UPDATE ${runs} SET last_seen_at = now() WHERE run_id = $1 AND finished_at IS NULL`, [choice.runId]).catch(() => undefined), HEARTBEAT_MS);
      heartbeat.unref();
      held = { client, runId: choice.runId, heartbeat };
      return { ...choice, cancelledJobs };
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  /** The coordinator stops serving its run (finished or not): the last time it was seen is now. */
  async function leave(): Promise<void> {
    if (!held) return;
    const { client, runId, heartbeat } = held;
    held = undefined;
    clearInterval(heartbeat);
    await client.query(`UPDATE ${runs} SET last_seen_at = now() WHERE run_id = $1 AND finished_at IS NULL`, [runId]).catch(() => undefined);
    await client.end().catch(() => undefined);
  }

  return { openRun, leave };
}
