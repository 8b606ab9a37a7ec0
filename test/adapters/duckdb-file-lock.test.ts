import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { Codes, TransientError } from '../../src/errors.ts';
import { REPO_ROOT } from '../support/demo-project.ts';

/** Another process holding the database file (DuckDB allows one writing process), for `holdMs`. */
function holder(path: string, holdMs: number): Promise<ChildProcess> {
  const script = `
    import { DuckDBInstance } from '@duckdb/node-api';
    const db = await DuckDBInstance.create(${JSON.stringify(path)});
    process.stdout.write('held\\n');
    setTimeout(() => { db.closeSync(); process.exit(0); }, ${holdMs});
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`holder exited early (${code})`)));
  });
}

describe('DuckDB: a database file another process holds is waited for (LOCK_WAIT_POLICY)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsform-lock-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives up after lockWaitMs with TSF412 naming the holder, having told the caller once', async () => {
    const path = join(dir, 'held.duckdb');
    const child = await holder(path, 30_000);
    try {
      const waits: string[] = [];
      const started = performance.now();
      const err = await DuckDBAdapter.open({ path, lockWaitMs: 400, onWait: (h) => waits.push(h) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TransientError);
      expect((err as TransientError).code).toBe(Codes.tenantLocked);
      expect((err as Error).message).toMatch(/held by another process .*gave up waiting/);
      expect(performance.now() - started).toBeGreaterThanOrEqual(400);
      expect(waits).toHaveLength(1);
    } finally {
      child.kill();
    }
  });

  it('opens once the other process lets go', async () => {
    const path = join(dir, 'released.duckdb');
    await holder(path, 600);
    const waits: string[] = [];
    const db = await DuckDBAdapter.open({ path, lockWaitMs: 30_000, onWait: (h) => waits.push(h) });
    try {
      expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      expect(waits).toHaveLength(1);
    } finally {
      await db.close();
    }
  });
});
