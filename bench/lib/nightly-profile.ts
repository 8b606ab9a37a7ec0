/**
 * `tsx bench/lib/nightly-profile.ts <projectDir> [selector…]`: one DuckDB `tsform run` of a project
 * with its database time attributed to statement kinds (fleet-profile.ts); prints JSON. For
 * finding what a nightly run spends per practice (bench:nightly measures, this explains).
 */
import { join } from 'node:path';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { profileAdapter } from './fleet-profile.ts';

const [projectDir, ...select] = process.argv.slice(2);
if (!projectDir) throw new Error('usage: nightly-profile.ts <projectDir> [selector…]');
const t = join(projectDir, 'target');
const inner = await DuckDBAdapter.open({ path: join(t, 'tsform.duckdb'), connections: 2, attach: { research: join(t, 'research.duckdb'), vault: join(t, 'vault.duckdb') } });
const { adapter, profile } = profileAdapter(inner);
const t0 = performance.now();
try {
  const run = await runWorkspace({ projectDir, command: 'run', adapter, ...(select.length ? { select } : {}) });
  const seconds = (performance.now() - t0) / 1000;
  const top = Object.entries(profile.seconds).sort((a, b) => b[1] - a[1]).map(([k, s]) => ({ kind: k, s: Math.round(s * 100) / 100, n: profile.counts[k] }));
  process.stdout.write(`${JSON.stringify({ seconds, units: run.results.length, top }, null, 1)}\n`);
} finally {
  await inner.close();
}
