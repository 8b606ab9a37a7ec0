import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { WorkerEvent } from '../../src/cli/worker.ts';
import { REPO_ROOT } from './demo-project.ts';

const BIN = join(REPO_ROOT, 'bin/tsform.mjs');

/** A `tsform worker` process on its own checkout of a project, as on another machine. */
export interface WorkerProcess {
  id: string;
  dir: string;
  child: ChildProcess;
  /** The worker's JSON events (stdout), as they arrive. */
  events: WorkerEvent[];
  stderr(): string;
  exited: Promise<number | null>;
}

/** Copies `projectDir` (without target/) and starts `tsform worker` on the copy; `edit` may change the copy first. */
export function startWorker(projectDir: string, id: string, url: string, args: string[] = [], edit?: (dir: string) => void): WorkerProcess {
  const dir = mkdtempSync(join(tmpdir(), 'tsform-worker-'));
  cpSync(projectDir, dir, { recursive: true, filter: (src) => !src.startsWith(join(projectDir, 'target')) });
  edit?.(dir);
  const child = spawn(process.execPath, [BIN, 'worker', '--project-dir', dir, '--target', 'postgres', '--worker-id', id, ...args], {
    env: { ...process.env, TSFORM_PG_URL: url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: WorkerEvent[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith('{')) events.push(JSON.parse(line) as WorkerEvent);
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => rmSync(dir, { recursive: true, force: true }));
  return { id, dir, child, events, stderr: () => stderr, exited };
}
