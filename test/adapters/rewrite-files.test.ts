import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, describe, expect, it } from 'vitest';
import { rewriteDatabaseFiles } from '../../src/adapters/duckdb/rewrite-files.ts';
import { Codes, TsformError } from '../../src/errors.ts';

/**
 * The files `tsform purge` and `tsform compact` rewrite are the files behind the target's paths:
 * a symbolic link is followed (the file it leads to loses the deleted bytes, the link stays), and
 * a path that is not a regular file is refused before anything is written (a copy renamed onto
 * `/dev/null` replaced the machine's device, red-team 2026-12-07). Synthetic values only.
 */
describe('rewriteDatabaseFiles: which file is rewritten', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function databaseWithDeletedRows(file: string, marker: string): Promise<void> {
    const db = await DuckDBInstance.create(file);
    const c = await db.connect();
    await c.run(`CREATE TABLE t AS SELECT i, '${marker}' || i AS v FROM range(20000) r(i)`);
    await c.run('CHECKPOINT');
    await c.run('DELETE FROM t WHERE i % 2 = 0');
    await c.run('CHECKPOINT');
    c.closeSync();
    db.closeSync();
  }

  it('a symbolic link: the file behind it is rewritten without the deleted rows, and the link stays a link', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsform-rewrite-'));
    mkdirSync(join(dir, 'store'));
    const real = join(dir, 'store', 'vault.duckdb');
    const link = join(dir, 'vault.duckdb');
    await databaseWithDeletedRows(real, 'd-');
    symlinkSync(real, link);
    const inode = lstatSync(real).ino;
    const [rewritten] = await rewriteDatabaseFiles(link, {});
    expect(rewritten!.file).toBe(link);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    // The file behind the link was replaced by the copy (the bytes in it: test/ingest/purge-bytes.test.ts).
    expect(lstatSync(real).ino).not.toBe(inode);
    const db = await DuckDBInstance.create(link);
    const c = await db.connect();
    expect(Number((await c.runAndReadAll('SELECT count(*) FROM t')).getRows()[0]![0])).toBe(10000);
    c.closeSync();
    db.closeSync();
  }, 120_000);

  it('a path that is not a regular file (a named pipe, as /dev/null is a device) is refused, nothing written beside it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsform-rewrite-'));
    const pipe = join(dir, 'warehouse.duckdb');
    execFileSync('mkfifo', [pipe]);
    const err = await rewriteDatabaseFiles(pipe, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TsformError);
    expect((err as TsformError).code).toBe(Codes.invalidRunSetting);
    expect((err as TsformError).message).toMatch(/is not a regular file/);
    expect(lstatSync(pipe).isFIFO()).toBe(true);
    expect(() => lstatSync(`${pipe}.rewrite`)).toThrow();
    // An attached file of that kind is refused the same way, the main file untouched.
    const main = join(dir, 'main.duckdb');
    await databaseWithDeletedRows(main, 'm-');
    const before = readFileSync(main);
    const again = await rewriteDatabaseFiles(main, { vault: pipe }).catch((e: unknown) => e);
    expect((again as TsformError).code).toBe(Codes.invalidRunSetting);
    expect(readFileSync(main).equals(before)).toBe(true);
    renameSync(main, `${main}.x`);
  }, 120_000);
});
