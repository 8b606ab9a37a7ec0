import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyDemoProject } from '../support/demo-project.ts';
import { cli } from '../support/cli.ts';

/**
 * Commands that read the warehouse, on a project never built: opening the DuckDB file would
 * create an empty warehouse (and research and vault files beside it), which a later command
 * then takes for a built one. Each says there is nothing built and writes no database file.
 */

/** Every DuckDB file (and its WAL) under the project, relative paths. */
function databaseFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.duckdb(\.wal)?$/.test(e.name)) found.push(relative(dir, p));
    }
  };
  walk(dir);
  return found;
}

describe('read-only commands on a project never built', () => {
  const demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 2) });
  afterAll(() => demo.remove());
  const [a] = [...demo.tenantIds].sort() as [string];
  const at = (...args: string[]) => [args[0]!, ...args.slice(1), '--project-dir', demo.dir];

  it('say nothing is built, with the build command where one helps, and create no database file', async () => {
    expect(databaseFiles(demo.dir)).toEqual([]);

    const show = await cli(...at('show', '--select', 'provider_panel', '--tenant', a));
    expect(show.code).toBe(2);
    expect(show.err).toContain('TSF308');
    expect(show.err).toContain('has no warehouse yet (target/tsform.duckdb)');
    expect(show.err).toContain(`tsform build --select +provider_panel --tenant ${a}`);

    const fresh = await cli(...at('freshness', '--format', 'json'));
    expect(fresh.err).not.toMatch(/TSF\d+/);
    // Never built: no practice has loaded data, so none is fresh.
    expect(fresh.out.join('\n')).toContain(a);
    expect(fresh.out.join('\n')).not.toContain('"status":"fresh"');

    const check = await cli(...at('privacy', 'check'));
    expect(check.code).toBe(0);
    expect(check.out.join('\n')).toContain('has no warehouse yet');

    const retokenize = await cli(...at('vault', 'retokenize'));
    expect(retokenize.code).toBe(0);
    expect(retokenize.out.join('\n')).toContain('nothing changed');

    const reidentify = await cli(...at('reidentify', '--token', `pt_${'0'.repeat(64)}`, '--reason', 'test'));
    expect(reidentify.code).not.toBe(0);
    expect(reidentify.err).toContain('TSF415');
    expect(reidentify.err).toContain('has no warehouse yet');

    const purge = await cli(...at('purge', '--tenant', 'p_gone'));
    expect(purge.code).toBe(0);
    expect(purge.out.join('\n')).toContain('0 row(s) would be deleted');

    const debug = await cli(...at('debug'));
    expect(debug.out.join('\n')).toContain('does not exist yet');

    const rebuilds = await cli(...at('ls', '--select', 'stg_encounters', '--rebuilds'));
    expect(rebuilds.code).toBe(0);

    expect(databaseFiles(demo.dir)).toEqual([]);
  });
});
