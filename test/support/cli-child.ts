import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './demo-project.ts';

/** A `tsform` CLI process, as a user starts it, for tests that kill it. */
export interface CliChild {
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the process has printed `startedWhen` (its modules are loaded, it works). */
  started: Promise<void>;
  /** kill -9. */
  kill(): void;
  /** stdout and stderr so far (node names, practice ids and counts: tsform prints no values). */
  output(): string;
}

export function spawnTsform(args: readonly string[], env: NodeJS.ProcessEnv, startedWhen: string): CliChild {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/tsform.mjs'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes(startedWhen)) started();
  });
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return {
    started: startedP,
    exited: new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve({ code, signal }));
    }),
    kill: () => void child.kill('SIGKILL'),
    output: () => out,
  };
}
