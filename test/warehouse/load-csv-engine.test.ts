import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { privateScratchDir } from '../../src/adapters/scratch-dir.ts';
import { csvRunLoads } from '../../src/execute/csv-run-loads.ts';
import { loadCsvByEngine } from '../../src/warehouse/load-csv-engine.ts';
import { loadCsvText } from '../../src/warehouse/load-csv.ts';

/**
 * DuckDB's own CSV reader loads a plain file exactly as the JavaScript parse does, and sends
 * anything else back to it (issue 16: the JavaScript parse was 24 s of a 5,000-practice run's
 * encounters alone, and most of the run's garbage on Node's heap).
 */
describe('loadCsvByEngine', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsform-csv-engine-'));
  let db: DuckDBAdapter;
  let n = 0;
  beforeEach(async () => {
    db = await DuckDBAdapter.open({ path: ':memory:', connections: 2 });
    await db.query('CREATE SCHEMA meta');
  });
  afterEach(() => db.close());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const filter = { column: 'practice_id', wanted: new Set(['a', 'b']), known: new Set(['a', 'b', 'c']) };
  const file = (name: string, content: string | Buffer) => {
    const path = join(dir, `${n++}-${name}`);
    writeFileSync(path, name.endsWith('.gz') ? gzipSync(content) : content);
    return path;
  };
  const rows = async (table: string) => (await db.query(`SELECT * FROM meta.${table} ORDER BY ALL`)).rows;
  const tables = async () => (await db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'meta'`)).rows.length;

  /** Both loads of one file: the engine's must exist and equal the JavaScript one in rows and counts. */
  async function same(path: string) {
    const engine = await loadCsvByEngine(db, path, 'meta', 'by_engine', filter);
    const js = await db.transaction((s) => loadCsvText(s, path, 'x.csv', 'meta', 'by_js', filter));
    expect(engine).toBeDefined();
    expect({ ...engine, firstOtherTenantLine: undefined }).toEqual({ ...js, firstOtherTenantLine: undefined });
    expect(await rows('by_engine')).toEqual(await rows('by_js'));
    return engine!;
  }

  it.each([
    ['plain', 'practice_id,v\na,1\nb,2\n'],
    ['a byte order mark', '\ufeffpractice_id,v\na,1\n'],
    ['CRLF line ends and blank lines', 'practice_id,v\r\na,1\r\n\r\nb,2\r\n'],
    ['no newline at the end', 'practice_id,v\na,1'],
    ['a quoted field over two lines, commas inside quotes', 'practice_id,v,w\na,"x\ny","1,2"\n'],
    ['spaces kept, empty and quoted-empty fields NULL', 'practice_id,v,w\na, x ,""\nb,,\n'],
    ['non-ASCII text', 'practice_id,v\na,Zoë Ñúñez 東京\n'],
    ['only a header', 'practice_id,v\n'],
    ['escaped quotes inside quoted fields, a quoted header', '"practice_id","v"\na,"ab""c"\nb,""""\n'],
    ['CR line ends', 'practice_id,v\ra,"1"\rb,2\r'],
  ])('%s: the same rows as the JavaScript parse', async (_what, content) => {
    await same(file('x.csv', content));
  });

  it('a gzip file, with the counts of practices not wanted and not known', async () => {
    const r = await same(file('x.csv.gz', 'practice_id,v\na,1\nc,2\nzz,3\n,4\nb,5\n'));
    expect(r).toMatchObject({ loaded: 2, otherTenantRows: 1, unknownTenantRows: 2 });
  });

  it.each([
    ['a ragged row (too few fields)', 'practice_id,v\na,1\na\n'],
    ['a ragged row (too many fields)', 'practice_id,v\na,1,2\n'],
    ['bytes that are not UTF-8', Buffer.concat([Buffer.from('practice_id,v\na,'), Buffer.from([0xff, 0xfe]), Buffer.from('\n')])],
    ['a quote inside an unquoted field', 'practice_id,v\na,ab"c\n'],
    ['a space after a closing quote', 'practice_id,v\na,"x" \n'],
    ['a space before an opening quote', 'practice_id,v\na, "x"\n'],
    ['a quoted field never closed', 'practice_id,v\na,"x\n'],
    ['mixed line ends', 'practice_id,v\na,1\r\nb,2\n'],
    ['a duplicate column name', 'practice_id,v,v\na,1,2\n'],
    ['an empty column name', 'practice_id,,v\na,1,2\n'],
    ['no tenant column', 'id,v\na,1\n'],
    ['a blank line before the header', '\npractice_id,v\na,1\n'],
    ['a header over two lines', '"practice\n_id",v\na,1\n'],
    ['an empty file', ''],
    ['a file that is not gzip', 'not gzip'],
  ])('%s: sent back to the JavaScript parse, nothing written', async (what, content) => {
    const path = what.includes('not gzip') ? join(dir, `${n++}-x.csv.gz`) : file('x.csv', content);
    if (what.includes('not gzip')) writeFileSync(path, content);
    expect(await loadCsvByEngine(db, path, 'meta', 'by_engine', filter)).toBeUndefined();
    expect(await tables()).toBe(0);
  });

  it('a file that does not exist: sent back (the JavaScript parse names it)', async () => {
    expect(await loadCsvByEngine(db, join(dir, 'missing.csv'), 'meta', 'by_engine', filter)).toBeUndefined();
  });

  it('leaves nothing in the private scratch folder', async () => {
    const before = readdirSync(privateScratchDir()).length;
    await loadCsvByEngine(db, file('x.csv', 'practice_id,v\na,1\n'), 'meta', 'one', filter);
    await loadCsvByEngine(db, file('x.csv', 'practice_id,v\na,1\na\n'), 'meta', 'two', filter);
    expect(readdirSync(privateScratchDir()).length).toBe(before);
  });
});

describe('a run load of a file the engine sends back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsform-csv-engine-run-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a ragged row is reported with file and line by the JavaScript parse, and its values are not quoted', async () => {
    const db = await DuckDBAdapter.open({ path: ':memory:', connections: 2 });
    try {
      await db.query('CREATE SCHEMA meta');
      writeFileSync(join(dir, 'r.csv'), 'practice_id,name\na,Alice\na,Robert Secretname,extra\n');
      const l = csvRunLoads({ adapter: db, projectRoot: dir, metaSchema: 'meta', tenantColumn: 'practice_id', runTenants: new Set(['a']), knownTenants: new Set(['a']) });
      const err = await l.load('r.csv').then(() => undefined, (e: unknown) => e as Error & { code?: string; line?: number });
      expect(err?.message).toMatch(/^r\.csv:3: error TSF109: ragged row/);
      expect(err?.message).not.toContain('Secretname');
      await l.dropAll();
    } finally {
      await db.close();
    }
  });
});

describe('a CSV extract that is a symlink', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsform-csv-engine-link-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is read through its link (a relative target too), the same rows', async () => {
    const db = await DuckDBAdapter.open({ path: ':memory:', connections: 2 });
    try {
      await db.query('CREATE SCHEMA meta');
      mkdirSync(join(dir, 'real'));
      mkdirSync(join(dir, 'data'));
      writeFileSync(join(dir, 'real', 'x.csv'), 'practice_id,v\na,1\nb,2\n');
      symlinkSync('../real/x.csv', join(dir, 'data', 'x.csv'));
      const r = await loadCsvByEngine(db, join(dir, 'data', 'x.csv'), 'meta', 't', { column: 'practice_id', wanted: new Set(['a']), known: new Set(['a', 'b']) });
      expect(r).toMatchObject({ loaded: 1, otherTenantRows: 1, unknownTenantRows: 0 });
      expect((await db.query('SELECT practice_id, v FROM meta.t')).rows).toEqual([{ practice_id: 'a', v: '1' }]);
    } finally {
      await db.close();
    }
  });
});
