import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';

/**
 * `target/run_started.json`: the run under way, written once it holds its locks and removed when
 * its run_results.json is written. A run stopped hard (kill -9, a second Ctrl-C) writes no
 * results, and `tsform retry` read the run before it and said "nothing to retry" (red-team,
 * 2026-12-07): the marker left behind tells retry that the last run did not finish.
 */
export interface RunStarted {
  run_id: string;
  command: string;
  started_at: string;
  host: string;
  pid: number;
}

const FILE = 'run_started.json';

export function markRunStarted(targetDir: string, run: { runId: string; command: string; startedAt: Date }): void {
  mkdirSync(targetDir, { recursive: true });
  const marker: RunStarted = { run_id: run.runId, command: run.command, started_at: run.startedAt.toISOString(), host: hostname(), pid: process.pid };
  writeFileSync(join(targetDir, FILE), `${JSON.stringify(marker)}\n`);
}

/**
 * After a run's results are written: its own marker goes, and a marker of a run that started
 * before it (a stopped run is superseded by a later one that finished); a run that started since
 * keeps its own.
 */
export function clearRunStarted(targetDir: string, run: { run_id: string; started_at: string }): void {
  const marker = readRunStarted(targetDir);
  if (marker && (marker.run_id === run.run_id || Date.parse(marker.started_at) < Date.parse(run.started_at))) rmSync(join(targetDir, FILE), { force: true });
}

export function readRunStarted(targetDir: string): RunStarted | undefined {
  const path = join(targetDir, FILE);
  if (!existsSync(path)) return undefined;
  try {
    const doc = JSON.parse(readFileSync(path, 'utf8')) as Partial<RunStarted>;
    if (typeof doc.run_id !== 'string' || typeof doc.pid !== 'number' || typeof doc.host !== 'string') return undefined;
    return { run_id: doc.run_id, command: String(doc.command), started_at: String(doc.started_at), host: doc.host, pid: doc.pid };
  } catch {
    return undefined;
  }
}

/**
 * The marker's process is running on this machine (signal 0 probes without sending anything). A
 * pid is reused: a run that was pid 1 in a container named init on the host, or the retry itself
 * in the next container, and retry said "still running" for good (red-team, 2026-12-07). So this
 * process is never the run, and where /proc tells what a pid runs, only a Node process can be.
 */
export function stillRunning(marker: RunStarted): boolean {
  if (marker.host !== hostname() || marker.pid === process.pid) return false;
  try {
    process.kill(marker.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const argv0 = readFileSync(`/proc/${marker.pid}/cmdline`, 'utf8').split('\u0000')[0] ?? '';
    return /node|tsform/i.test(basename(argv0));
  } catch {
    return true;
  }
}
