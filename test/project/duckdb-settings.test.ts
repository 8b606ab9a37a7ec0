import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { openAdapter } from '../../src/cli/api.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';

/**
 * `settings:` of a DuckDB target (issue 16: a 5,000-practice run needs a memory limit): the
 * resource settings a project may choose are applied when the database opens; a setting that
 * would move PHI files or load code, or settings on a PostgreSQL target, are diagnostics at their
 * line, never applied.
 */

let demo: DemoCopy | undefined;
afterEach(() => demo?.remove());

const DUCK_TARGET = '    path: target/tsform.duckdb\n';
const PG_TARGET = '    url_env: TSFORM_PG_URL   # never a password in this file\n';

function withTargets(edit: (yml: string) => string) {
  demo = copyDemoProject({ tenants: sampleTenants(1) });
  const file = join(demo.dir, 'tsform.yml');
  const yml = readFileSync(file, 'utf8');
  expect(yml).toContain(DUCK_TARGET);
  expect(yml).toContain(PG_TARGET);
  writeFileSync(file, edit(yml));
  return { project: loadProject(demo.dir), lineOf: (text: string) => readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(text)) + 1 };
}

describe('settings of a DuckDB target', () => {
  it('applies memory_limit, checkpoint_threshold and the allocator settings when the database opens', async () => {
    const allocator = '      allocator_flush_threshold: 32MB\n      allocator_bulk_deallocation_flush_threshold: 48MB\n      allocator_background_threads: true\n';
    const { project } = withTargets((yml) => yml.replace(DUCK_TARGET, `${DUCK_TARGET}    settings:\n      memory_limit: 1GB\n      checkpoint_threshold: 64MB\n${allocator}`));
    expect(project.diagnostics).toEqual([]);
    const adapter = await openAdapter(project, project.config.targets.duckdb!, {});
    try {
      const { rows } = await adapter.query(
        `SELECT current_setting('memory_limit') AS m, current_setting('checkpoint_threshold') AS c, current_setting('allocator_flush_threshold') AS f,
                current_setting('allocator_bulk_deallocation_flush_threshold') AS b, CAST(current_setting('allocator_background_threads') AS VARCHAR) AS t`,
      );
      expect(rows[0]).toEqual({
        m: expect.stringMatching(/^(1\.0 GiB|953\.6 MiB)$/),
        c: expect.stringMatching(/^(64\.0 MiB|61\.0 MiB)$/),
        f: expect.stringMatching(/^(32\.0 MiB|30\.5 MiB)$/),
        b: expect.stringMatching(/^(48\.0 MiB|45\.7 MiB)$/),
        t: 'true',
      });
    } finally {
      await adapter.close();
    }
  });

  // A run's commits stay in the WAL until a checkpoint (more of them with checkpoint_threshold
  // raised): a process killed before one must lose none of them.
  it('keeps what was committed when the process is killed before any checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsform-wal-'));
    try {
      const path = join(dir, 'w.duckdb');
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../support/duckdb-kill-child.ts', import.meta.url)), path, '100000'], { stdio: ['ignore', 'pipe', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (b: Buffer) => {
          if (b.toString().includes('committed')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`child exited ${code} before committing`)));
      });
      expect(statSync(`${path}.wal`).size, 'the commit is in the WAL, not yet checkpointed').toBeGreaterThan(0);
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      expect(existsSync(`${path}.wal`)).toBe(true);
      const adapter = await DuckDBAdapter.open({ path, connections: 1 });
      try {
        const { rows } = await adapter.query('SELECT count(*) AS n, sum(i) AS s FROM t');
        expect({ n: Number(rows[0]!.n), s: Number(rows[0]!.s) }).toEqual({ n: 100000, s: (99999 * 100000) / 2 });
      } finally {
        await adapter.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a setting that would move PHI files or load code, at its line', () => {
    const { project, lineOf } = withTargets((yml) => yml.replace(DUCK_TARGET, `${DUCK_TARGET}    settings:\n      temp_directory: /tmp/spill\n      enable_external_access: true\n`));
    expect(project.diagnostics).toEqual([
      expect.objectContaining({ code: 'TSF102', file: 'tsform.yml', line: lineOf('temp_directory'), message: expect.stringMatching(/'temp_directory' cannot be set here \(memory_limit, /) }),
      expect.objectContaining({ code: 'TSF102', file: 'tsform.yml', line: lineOf('enable_external_access'), message: expect.stringMatching(/'enable_external_access' cannot be set here/) }),
    ]);
  });

  it('refuses settings on a PostgreSQL target, and a value that is not a scalar', () => {
    const { project, lineOf } = withTargets((yml) =>
      yml.replace(PG_TARGET, `${PG_TARGET}    settings: { work_mem: 64MB }\n`).replace(DUCK_TARGET, `${DUCK_TARGET}    settings:\n      memory_limit: [1GB]\n`),
    );
    expect(project.diagnostics.map((d) => ({ code: d.code, line: d.line, message: d.message }))).toEqual(
      expect.arrayContaining([
        { code: 'TSF102', line: lineOf('work_mem'), message: expect.stringMatching(/settings are DuckDB's/) },
        { code: 'TSF102', line: lineOf('memory_limit: [1GB]'), message: expect.stringMatching(/settings.memory_limit must be a value/) },
      ]),
    );
  });
});
