import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { REPO_ROOT } from '../support/demo-project.ts';

/**
 * `tsform compact` and `tsform purge` replace DuckDB files by checked copies. They closed their
 * instance before renaming the copies: a run waiting for the file lock that opened the old file
 * in that gap (10-22 ms) wrote its whole build into a file the rename then unlinked, and reported
 * success (red-team, 2026-12-07, reproduced with the gap widened). Each rename now happens while
 * the rewrite still holds the file the path leads to: another process that opens it right after
 * a rename finds it locked. The probe is a process of its own (DuckDB's lock is per process).
 */

const renames: string[] = [];
let probe: (() => string) | undefined;
vi.mock('node:fs', async (original) => {
  const fs = await original<typeof import('node:fs')>();
  return {
    ...fs,
    renameSync: (from: string, to: string) => {
      fs.renameSync(from, to);
      renames.push(probe ? probe() : 'no probe');
    },
  };
});

function openedByAnotherProcess(file: string): string {
  const script = `import('@duckdb/node-api').then(async ({ DuckDBInstance }) => { try { const db = await DuckDBInstance.create(${JSON.stringify(file)}); db.closeSync(); console.log('opened'); } catch (e) { console.log(/lock/i.test(String(e)) ? 'locked' : 'error: ' + String(e).split('\\n')[0]); } });`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  return r.stdout.trim();
}

describe('rewriteDatabaseFiles holds the files across its renames', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a process opening the warehouse or an attached file right after its rename finds it locked', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsform-rewrite-lock-'));
    const [main, vault] = [join(dir, 'tsform.duckdb'), join(dir, 'vault.duckdb')];
    for (const f of [main, vault]) {
      const db = await DuckDBInstance.create(f);
      const c = await db.connect();
      await c.run('CREATE TABLE t AS SELECT i FROM range(1000) r(i)');
      await c.run('DELETE FROM t WHERE i % 3 = 0');
      c.closeSync();
      db.closeSync();
    }
    const { rewriteDatabaseFiles } = await import('../../src/adapters/duckdb/rewrite-files.ts');
    let next = 0;
    const targets = [main, vault];
    probe = () => openedByAnotherProcess(targets[next++]!);
    const rewritten = await rewriteDatabaseFiles(main, { vault });
    probe = undefined;
    expect(rewritten.map((r) => r.file)).toEqual([main, vault]);
    expect(renames).toEqual(['locked', 'locked']);
    // Once the rewrite is done the files are free, and hold the live rows.
    expect(openedByAnotherProcess(main)).toBe('opened');
    const db = await DuckDBInstance.create(main);
    const c = await db.connect();
    expect(Number((await c.runAndReadAll('SELECT count(*) FROM t')).getRows()[0]![0])).toBe(666);
    c.closeSync();
    db.closeSync();
  }, 180_000);

  it('a file another process holds is waited for, as a run waits, not a failure at once', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsform-rewrite-lock-'));
    const main = join(dir, 'tsform.duckdb');
    const db = await DuckDBInstance.create(main);
    const c = await db.connect();
    await c.run('CREATE TABLE t AS SELECT i FROM range(1000) r(i)');
    c.closeSync();
    db.closeSync();
    const script = `import('@duckdb/node-api').then(async ({ DuckDBInstance }) => { const db = await DuckDBInstance.create(${JSON.stringify(main)}); console.log('holding'); setTimeout(() => { db.closeSync(); }, 3000); });`;
    const holder = spawn(process.execPath, ['-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => holder.on('exit', r));
    await new Promise<void>((r) => holder.stdout.on('data', (d: Buffer) => d.toString().includes('holding') && r()));
    const { rewriteDatabaseFiles } = await import('../../src/adapters/duckdb/rewrite-files.ts');
    const rewritten = await rewriteDatabaseFiles(main, {});
    expect(rewritten.map((r) => r.file)).toEqual([main]);
    await exited;
  }, 180_000);
});
