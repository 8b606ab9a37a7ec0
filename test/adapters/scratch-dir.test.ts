import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { holdPrivateScratchDir, privateScratchDir } from '../../src/adapters/scratch-dir.ts';

describe('the private scratch folder', () => {
  it('lives while a hold is open and is removed by the last release, files and all', () => {
    const a = holdPrivateScratchDir();
    const b = holdPrivateScratchDir();
    expect(b.path).toBe(a.path);
    expect(privateScratchDir()).toBe(a.path);
    writeFileSync(join(a.path, 'chunk.csv'), 'x\n');
    a.release();
    a.release(); // a second release of one hold changes nothing
    expect(existsSync(b.path)).toBe(true);
    b.release();
    expect(existsSync(b.path)).toBe(false);
    const c = holdPrivateScratchDir();
    expect(c.path).not.toBe(a.path);
    expect(existsSync(c.path)).toBe(true);
    c.release();
    expect(existsSync(c.path)).toBe(false);
  });

  it('is removed when the last DuckDB adapter closes, and a new adapter gets a folder it can read', async () => {
    const first = await DuckDBAdapter.open({ path: ':memory:' });
    const second = await DuckDBAdapter.open({ path: ':memory:' });
    const dir = privateScratchDir();
    await first.close();
    expect(existsSync(dir)).toBe(true);
    await second.close();
    expect(existsSync(dir)).toBe(false);
    const third = await DuckDBAdapter.open({ path: ':memory:' });
    try {
      const now = privateScratchDir();
      expect(now).not.toBe(dir);
      writeFileSync(join(now, 'probe.csv'), 'n\n7\n');
      const { rows } = await third.query(`SELECT n FROM read_csv('${join(now, 'probe.csv')}')`);
      expect(Number(rows[0]!.n)).toBe(7);
    } finally {
      await third.close();
    }
  });
});
