/**
 * `tsx bench/lib/nightly-profile.ts <projectDir> [duckdb|postgres] [selector…]`: a `tsform run`
 * of a project with its database time attributed to statement kinds (fleet-profile.ts); prints
 * JSON. On PostgreSQL a throwaway server (machine-first) is started and the whole project is run
 * once unprofiled first, so the profiled run is a steady one. For finding what a nightly run
 * spends per practice (bench:nightly measures, this explains).
 */
import { join } from 'node:path';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { openAdapter, resolveTarget } from '../../src/cli/target.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../../test/support/postgres.ts';
import { profileAdapter } from './fleet-profile.ts';

const [projectDir, target = 'duckdb', ...select] = process.argv.slice(2);
if (!projectDir || !['duckdb', 'postgres'].includes(target)) throw new Error('usage: nightly-profile.ts <projectDir> [duckdb|postgres] [selector…]');
let server: ThrowawayPostgres | undefined;
let inner: Adapter;
if (target === 'postgres') {
  server = await startThrowawayPostgres({ binaries: 'machine-first' });
  process.env.TSFORM_PG_URL = server.url;
  const warm = await runWorkspace({ projectDir, command: 'run', target: 'postgres' });
  process.stderr.write(`unprofiled first run: ${warm.results.length} results\n`);
  inner = await createPostgresAdapter({ url: server.url, poolSize: 4 });
} else {
  // The project's own target (its threads and `settings:`), as `tsform run` opens it.
  const project = loadProject(projectDir);
  inner = await openAdapter(project, resolveTarget(project));
}
const { adapter, profile } = profileAdapter(inner);
const t0 = performance.now();
try {
  const run = await runWorkspace({ projectDir, command: 'run', adapter, ...(target === 'postgres' ? { target: 'postgres' as const } : {}), ...(select.length ? { select } : {}) });
  const seconds = (performance.now() - t0) / 1000;
  const top = Object.entries(profile.seconds).sort((a, b) => b[1] - a[1]).map(([k, s]) => ({ kind: k, s: Math.round(s * 100) / 100, n: profile.counts[k] }));
  process.stdout.write(`${JSON.stringify({ seconds, units: run.results.length, top })}\n`);
} finally {
  await inner.close();
  await server?.stop();
}
