/**
 * The queue a distributed run feeds and its workers serve (`tsform run --distributed`,
 * `tsform worker`). One implementation: pg-boss in the PostgreSQL warehouse
 * (postgres/pg-boss-queue.ts). The queue only carries jobs; which practice runs when, and who
 * may write it, stay tsform's (the coordinator's order, the warehouse's practice locks).
 */

export type JobState = 'created' | 'retry' | 'active' | 'completed' | 'cancelled' | 'failed';

export interface QueuedJob<D> {
  queue: string;
  id: string;
  data: D;
}

export interface JobStatus {
  state: JobState;
  /** What the worker completed (or failed) it with. */
  output: unknown;
  retryCount: number;
}

export interface SendOptions {
  /** Times a failed job is offered again (a dead worker's job counts as failed). */
  retryLimit: number;
  /** An active job not completed in this long is failed by the queue itself: the backstop for a worker that hangs. */
  expireInSeconds: number;
}

export interface JobQueue {
  /** Creates the queues that are missing. */
  ensureQueues(names: readonly string[]): Promise<void>;
  /** Sends the job unless one with this id exists in any state; true when this call sent it. */
  sendOnce<D extends object>(queue: string, id: string, data: D, opts: SendOptions): Promise<boolean>;
  /** One job from the first of `queues` (in that order) that has one, now active; undefined when all are empty. */
  fetch<D>(queues: readonly string[]): Promise<QueuedJob<D> | undefined>;
  complete(queue: string, id: string, output: object): Promise<void>;
  fail(queue: string, id: string, output: object): Promise<void>;
  status(queue: string, id: string): Promise<JobStatus | undefined>;
  /**
   * Holds this worker's presence until released (or the process dies): a session-level lock in
   * the database, so that a worker killed with -9 is seen gone as soon as its connection ends.
   * Refused (TSF460) while another live worker uses the same id.
   */
  register(workerId: string): Promise<{ release(): Promise<void> }>;
  /** Records that this worker took this job (the coordinator reads it to find a dead worker's job). */
  claim(jobId: string, workerId: string): Promise<void>;
  /**
   * Of these jobs, those claimed by a worker that is gone; their claims are removed in the same
   * statement, so a worker that takes one again next is not mistaken for the dead one.
   */
  reapGone(jobIds: readonly string[]): Promise<string[]>;
  /** Of these jobs, those no worker has claimed. */
  unclaimed(jobIds: readonly string[]): Promise<string[]>;
  /**
   * Opens the run this coordinator serves, one coordinator at a time per project: reads the
   * project's unfinished runs, lets `choose` pick (cli/run-resumption.ts), closes the runs it
   * abandons (their jobs not yet taken are cancelled: jobs carry their run's id as `runId` in
   * their data) and records a new run under `key`, the selection's identity. From then until
   * `close()` this process is the run's live coordinator: other coordinators see it so, and see
   * when it was last alive.
   */
  openRun(run: { project: string; key: string }, choose: (open: OpenRun[]) => RunChoice): Promise<RunChoice & { cancelledJobs: number }>;
  /** The run is over: no coordinator resumes it. */
  finishRun(runId: string): Promise<void>;
  /**
   * Whether the run was finished or closed (abandoned): a job of it that the queue hands out
   * again (its worker died and the job expired after its run was closed) is not run.
   */
  runClosed?(runId: string): Promise<boolean>;
  close(): Promise<void>;
}

/** An unfinished distributed run, as the next coordinator finds it. */
export interface OpenRun {
  runId: string;
  /** Its selection's identity (cli/coordinator.ts). */
  key: string;
  /** A coordinator's session holds it (that session may belong to a vanished host: see `silentForSeconds`). */
  live: boolean;
  /** Seconds since a coordinator last recorded that it serves it (renewed every few seconds while one does). */
  silentForSeconds: number;
}

/** Which run a coordinator serves, and the unfinished runs it closes as abandoned. */
export interface RunChoice {
  runId: string;
  mode: 'new' | 'resumed' | 'joined';
  abandon: string[];
  /** Resumed or joined: how long the run had no coordinator. */
  silentForSeconds?: number;
}
