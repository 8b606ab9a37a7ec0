import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { NodeResult, RunResults } from '../../src/artifacts/run-results.ts';
import type { SqlParam } from '../../src/adapters/adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { explainCastFailure, findBadCsvValue } from '../../src/warehouse/csv-bad-value.ts';
import { removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';
import { withWarehouse } from '../ingest/support/capture-project.ts';
import { twoEngines } from '../support/two-engines.ts';

/**
 * A value its declared type cannot hold, in a CSV extract, a seed or a landing file: the run
 * names the file, the line (as an editor counts it) and the column, never the value (TSF422);
 * only the practice whose rows hold it fails, and its data stays as it was.
 */

const TENANTS = 'tenants:\n  - { id: acme, name: Acme, timezone: UTC }\n  - { id: bolt, name: Bolt, timezone: UTC }\n';
const SOURCES = (extract: string) => `sources:
  - name: ehr
    schema: raw
    scope: tenant
    loader:
      csv: data/{table}.${extract}
    tables:
      - name: visits
        key: [visit_id]
        columns:
          - { name: practice_id, phi: none }
          - { name: visit_id, phi: none }
          - { name: visited_on, phi: none, data_type: DATE }
          - { name: amount, phi: none, data_type: "DECIMAL(10,2)" }
          - { name: note, phi: none }
`;
const GOOD = 'practice_id,visit_id,visited_on,amount,note\nacme,a1,2024-01-01,10.50,ok\nbolt,b1,2024-01-02,3,ok\nbolt,b2,2024-01-03,4,ok\n';

const node = (r: RunResults, id: string): NodeResult | undefined => r.results.find((x) => x.node === id);
const project = (files: Record<string, string>, extract = 'csv') => writeTempProject({ 'tsform.yml': 'name: bad_values\n', 'tenants.yml': TENANTS, 'models/sources.yml': SOURCES(extract), ...files });
const run = (dir: string) => runWorkspace({ projectDir: dir, command: 'run' });
const rows = (dir: string, sql: string) => withWarehouse(dir, async (wh) => (await wh.query(sql)).rows.map((r) => Object.values(r).map(String).join('|')));

afterAll(() => removeTempProjects());

describe('a value its type cannot hold names its file, line and column', () => {
  it('a bad date in one practice\'s rows of an extract: that practice fails with the line, the other loads, the failed slice keeps its rows', async () => {
    const dir = project({ 'data/visits.csv': GOOD });
    expect((await run(dir)).results.filter((x) => x.status !== 'success')).toEqual([]);
    writeFileSync(join(dir, 'data/visits.csv'), `${GOOD}acme,a2,2024-01-04,1,ok\nbolt,b3,2024-02-30,5,ok\n`);
    const r = await run(dir);
    const bad = node(r, 'source:ehr.visits@bolt')!;
    expect(bad).toMatchObject({ status: 'error', code: 'TSF422' });
    expect(bad.message).toContain("data/visits.csv:6: column 'visited_on' holds a value that is not a valid DATE (the value is withheld)");
    expect(bad.message).not.toContain('2024-02-30');
    expect(node(r, 'source:ehr.visits@acme')).toMatchObject({ status: 'success', rows: 2 });
    expect(await rows(dir, 'SELECT practice_id, visit_id FROM raw.visits ORDER BY 2')).toEqual(['acme|a1', 'acme|a2', 'bolt|b1', 'bolt|b2']);
  });

  it('each practice is told its own first bad line, in file order over every typed column', async () => {
    const text = 'practice_id,visit_id,visited_on,amount,note\nacme,a1,2024-01-01,ten,ok\nbolt,b1,2024-01-02,3,ok\nbolt,b2,2024-13-01,4,ok\nbolt,b3,2024-01-03,x,ok\n';
    const r = await run(project({ 'data/visits.csv': text }));
    expect(node(r, 'source:ehr.visits@acme')!.message).toContain("data/visits.csv:2: column 'amount' holds a value that is not a valid DECIMAL(10,2)");
    expect(node(r, 'source:ehr.visits@bolt')!.message).toContain("data/visits.csv:4: column 'visited_on' holds a value that is not a valid DATE");
  });

  it('lines are counted as an editor counts them past quoted line breaks (LF and CRLF) and in a gzip extract', async () => {
    const lf = 'practice_id,visit_id,visited_on,amount,note\nacme,a1,2024-01-01,1,"two\nlines"\nacme,a2,2024-01-02,2,"three\n\nlines"\nacme,a3,yesterday,3,ok\n';
    const crlf = lf.replace(/\n/g, '\r\n');
    for (const [extract, bytes] of [['csv', lf], ['csv', crlf], ['csv.gz', gzipSync(lf)]] as const) {
      const dir = project({}, extract);
      mkdirSync(join(dir, 'data'));
      writeFileSync(join(dir, `data/visits.${extract}`), bytes);
      const r = await run(dir);
      expect(node(r, 'source:ehr.visits@acme')!.message, `${extract} ${bytes === crlf ? 'CRLF' : 'LF'}`).toContain(`data/visits.${extract}:7: column 'visited_on'`);
    }
  });

  it('a hostile value is bound, never spliced into the statement that looks for it', async () => {
    const dir = project({ 'data/visits.csv': `${GOOD}bolt,b9,"'); DROP TABLE raw.visits; --",1,ok\n` });
    const r = await run(dir);
    expect(node(r, 'source:ehr.visits@bolt')).toMatchObject({ status: 'error', code: 'TSF422' });
    expect(node(r, 'source:ehr.visits@bolt')!.message).toContain('data/visits.csv:5:');
    expect(node(r, 'source:ehr.visits@bolt')!.message).not.toContain('DROP');
    expect(await rows(dir, 'SELECT practice_id, count(*) FROM raw.visits GROUP BY 1')).toEqual(['acme|1']);
  });

  it('a seed: a declared type and an inferred one', async () => {
    const declared = await run(
      project({
        'data/visits.csv': GOOD,
        'models/seeds.yml': 'seeds:\n  - name: codes\n    column_types:\n      weight: INTEGER\n',
        'seeds/codes.csv': 'code,weight\na,1\nb,2\nc,heavy\n',
      }),
    );
    expect(node(declared, 'codes')).toMatchObject({ status: 'error', code: 'TSF422' });
    expect(node(declared, 'codes')!.message).toContain("seeds/codes.csv:4: column 'weight' holds a value that is not a valid INTEGER");
    // every value looks like a date, so the column is read as one; February has no 30th
    const inferred = await run(project({ 'data/visits.csv': GOOD, 'seeds/days.csv': 'day,label\n2024-01-01,a\n2024-02-30,b\n' }));
    expect(node(inferred, 'days')!.message).toContain("seeds/days.csv:3: column 'day' holds a value that is not a valid DATE");
  });

  it('a landing file: the practice\'s file and line', async () => {
    const dir = writeTempProject({
      'tsform.yml': 'name: landing_values\n',
      'tenants.yml': TENANTS,
      'models/sources.yml': `sources:
  - name: clinic
    loader:
      csv_landing: { path: "landing/{table}", layout: folder_per_practice }
    tables:
      - name: visits
        key: [visit_id]
        columns:
          - { name: visited_on, data_type: DATE }
`,
      'landing/visits/acme/2024-01-01.csv': 'visit_id,visited_on\nv1,2024-01-01\n',
      'landing/visits/bolt/2024-01-01.csv': 'visit_id,visited_on\nb1,2024-01-01\nb2,2024-01-02\nb3,01/03/2024x\n',
    });
    const r = await run(dir);
    const bad = node(r, 'source:clinic.visits@bolt')!;
    expect(bad).toMatchObject({ status: 'error', code: 'TSF422' });
    expect(bad.message).toContain("landing/visits/bolt/2024-01-01.csv:4: column 'visited_on'");
    expect(bad.message).not.toContain('01/03');
    expect(node(r, 'source:clinic.visits@acme')).toMatchObject({ status: 'success' });
  });
});

describe.each(twoEngines('bad-value'))('findBadCsvValue on $name', (engine) => {
  const probe = { query: (sql: string, params: readonly SqlParam[]) => engine.adapter().query(sql, params), classifyError: (err: unknown) => engine.adapter().classifyError(err) };
  const file = (name: string, text: string) => {
    const dir = writeTempProject({ [name]: text });
    return { file: join(dir, name), display: name };
  };
  const types = { d: 'DATE', n: 'DECIMAL(10,2)', i: 'INTEGER', ts: 'TIMESTAMPTZ', b: 'BOOLEAN', t: 'VARCHAR' };

  it('the first line in file order over every typed column, across slices; the filter; nothing to blame', async () => {
    const good = (k: number) => `p${k % 3},2024-01-${String(1 + (k % 28)).padStart(2, '0')},${k}.25,${k},2024-01-01 10:00:00+02,true,text ${k}`;
    const lines = Array.from({ length: 45_000 }, (_, k) => good(k));
    lines[43_207] = lines[43_207]!.replace(/,true,/, ',maybe,'); // line 43,209 (header and 1-based)
    lines[44_000] = lines[44_000]!.replace(/,\d+,2024-01-01 10/, ',12a,2024-01-01 10'); // line 44,002: not an INTEGER
    const csv = file('big.csv', `p,d,n,i,ts,b,t\n${lines.join('\n')}\n`);
    expect(await findBadCsvValue(probe, csv, types)).toEqual({ line: 43_209, column: 'b', type: 'BOOLEAN' });
    // each row's practice is p(k mod 3): filtered to line 44,002's practice, line 43,209 (another's) is not read
    const practiceOf = (line: number) => `p${(line - 2) % 3}`;
    const other = ['p0', 'p1', 'p2'].find((p) => p !== practiceOf(43_209) && p !== practiceOf(44_002))!;
    expect(await findBadCsvValue(probe, csv, types, { column: 'p', wanted: new Set([practiceOf(44_002)]) })).toEqual({ line: 44_002, column: 'i', type: 'INTEGER' });
    expect(await findBadCsvValue(probe, csv, types, { column: 'p', wanted: new Set([other]) })).toBeUndefined();
    expect(await findBadCsvValue(probe, file('ok.csv', `p,d,n\np0,2024-01-01,1\np1,,\n`), types)).toBeUndefined();
    expect(await findBadCsvValue(probe, file('text.csv', `p,t\np0,anything\n`), types)).toBeUndefined();
    // a type the engine does not know is no value's fault
    expect(await findBadCsvValue(probe, file('type.csv', `p,d\np0,2024-01-01\n`), { d: 'NO_SUCH_TYPE' })).toBeUndefined();
  });
});

describe('explainCastFailure keeps what it cannot explain', () => {
  const csv = () => {
    const dir = writeTempProject({ 'v.csv': 'p,d\np0,2024-01-01\np0,nope\n' });
    return { file: join(dir, 'v.csv'), display: 'v.csv' };
  };
  const original = new Error('the load failed');
  const castFails = (sql: string, params: readonly SqlParam[]) => {
    const values = (params[0] as string[]) ?? [];
    return values.includes('nope') ? Promise.reject(new Error('Conversion Error')) : Promise.resolve({});
  };

  it('a value at fault: TSF422 with its line', async () => {
    const err = await explainCastFailure(original, { query: castFails, classifyError: () => 'permanent' }, csv(), { d: 'DATE' });
    expect(err).toMatchObject({ code: 'TSF422', message: "v.csv:3: column 'd' holds a value that is not a valid DATE (the value is withheld)" });
  });

  it('a transient or cancelled failure keeps its class (no search at all)', async () => {
    let queries = 0;
    const engine = (c: 'transient' | 'cancelled') => ({ query: (...a: Parameters<typeof castFails>) => (queries++, castFails(...a)), classifyError: () => c });
    expect(await explainCastFailure(original, engine('transient'), csv(), { d: 'DATE' })).toBe(original);
    expect(await explainCastFailure(original, engine('cancelled'), csv(), { d: 'DATE' })).toBe(original);
    expect(queries).toBe(0);
  });

  it('a connection lost during the search: the original error, not the first value blamed', async () => {
    const lost = Object.assign(new Error('connection terminated'), { transient: true });
    const engine = { query: () => Promise.reject(lost), classifyError: (e: unknown) => (e === lost ? ('transient' as const) : ('permanent' as const)) };
    expect(await explainCastFailure(original, engine, csv(), { d: 'DATE' })).toBe(original);
  });
});
