import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { NodeResult, RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';
import { withWarehouse } from './support/capture-project.ts';

/** CSV landing folders as a captured source: no OLTP, DuckDB warehouse. */
const PROJECT = {
  'tsform.yml': 'name: landing\n',
  'tenants.yml': ['acme', 'bravo', 'carol'].map((id) => `  - { id: ${id}, name: ${id}, timezone: UTC }`).join('\n').replace(/^/, 'tenants:\n'),
  'models/sources.yml': `sources:
  - name: clinic
    loader:
      csv_landing: { path: "landing/{table}", layout: folder_per_practice }
    tables:
      - name: visits
        key: [visit_id]
        columns:
          - { name: visited_on, data_type: DATE }
  - name: billing
    loader:
      csv_landing: { path: "landing/{table}", layout: practice_column }
    tables:
      - name: invoices
        key: invoice_id
        columns:
          - { name: amount, data_type: "DECIMAL(10,2)" }
`,
  'models/visit_counts.sql': 'select practice_id, count(*) as visits from {{source "clinic" "visits"}} group by practice_id\n',
  'models/invoice_totals.sql': 'select practice_id, sum(amount) as total from {{source "billing" "invoices"}} group by practice_id\n',
  'landing/visits/acme/2024-01-01.csv': 'visit_id,visited_on\nv1,2024-01-01\nv2,2024-01-02\n',
  'landing/visits/bravo/2024-01-01.csv': 'visit_id,visited_on\nb1,2024-01-01\nb2,2024-01-01\nb3,2024-01-03\n',
  'landing/visits/carol/2024-01-01.csv': 'visit_id,visited_on\nc1,2024-01-01\nc2,2024-01-02,extra\n',
  'landing/invoices/2024-01.csv': 'practice_id,invoice_id,amount\nacme,i1,10.50\nbravo,i2,20\nacme,i3,5\nzed_unknown,i4,99\n',
};

describe('capture from CSV landing folders', () => {
  // a fresh copy of the project (landing files and warehouse) for each case: any case passes alone
  let dir: string;
  beforeEach(() => {
    dir = writeTempProject(PROJECT);
  });
  afterAll(() => removeTempProjects());
  const run = () => runWorkspace({ projectDir: dir, command: 'run' });
  const node = (r: RunResults, id: string): NodeResult | undefined => r.results.find((x) => x.node === id);
  const rows = (sql: string) => withWarehouse(dir, async (wh) => (await wh.query(sql)).rows.map((r) => Object.values(r).map(String).join('|')));

  it('loads each practice from its folder; a malformed file fails that practice only, with file and line', async () => {
    const r = await run();
    const bad = node(r, 'source:clinic.visits@carol')!;
    expect(bad).toMatchObject({ status: 'error', code: 'TSF109' });
    expect(bad.message).toContain('carol');
    expect(bad.message).toContain('landing/visits/carol/2024-01-01.csv:3');
    expect(node(r, 'visit_counts@carol')).toMatchObject({ status: 'skipped', code: 'TSF405' });
    for (const t of ['acme', 'bravo']) expect(r.tenants[t]!.status).toBe('success');
    expect(node(r, 'source:clinic.visits@acme')?.rows).toBe(2);
    expect(r.notices).toEqual(['source:billing.invoices: 1 row(s) in landing files carry a practice_id that is not in tenants.yml; not loaded']);
    expect(await rows('SELECT practice_id, visits FROM marts.visit_counts ORDER BY 1')).toEqual(['acme|2', 'bravo|3']);
  });

  it('a shared file with a practice column loads only each practice\'s rows; unknown practice rows are reported once, never loaded', async () => {
    await run();
    const r = await run();
    expect(await rows('SELECT practice_id, invoice_id FROM raw.invoices ORDER BY 2')).toEqual(['acme|i1', 'bravo|i2', 'acme|i3']);
    expect(await rows('SELECT practice_id, total FROM marts.invoice_totals ORDER BY 1')).toEqual(['acme|15.50', 'bravo|20.00']);
    expect(await rows(`SELECT count(*) FROM raw.invoices WHERE practice_id = 'zed_unknown'`)).toEqual(['0']);
    // the second run read no file again; the first one reported the unknown row once
    expect(node(r, 'source:billing.invoices@acme')?.rows).toBe(0);
    expect(node(r, 'source:clinic.visits@acme')?.rows).toBe(0);
  });

  it('a loaded file is not loaded twice; a fixed file, a new file with updates, a new column and deletions are', async () => {
    await run(); // the files of PROJECT are loaded (carol's fails)
    writeFileSync(join(dir, 'landing/visits/carol/2024-01-01.csv'), 'visit_id,visited_on\nc1,2024-01-01\nc2,2024-01-02\n');
    writeFileSync(join(dir, 'landing/visits/acme/2024-01-02.csv'), 'visit_id,visited_on,reason\nv1,2024-01-05,checkup\nv9,2024-01-06,flu\n');
    writeFileSync(join(dir, 'landing/visits/bravo/2024-01-02.csv'), 'practice_id,visit_id,visited_on,deleted_at\nbravo,b2,2024-01-01,2024-01-02\n');
    const r = await run();
    expect(r.results.filter((x) => x.status !== 'success')).toEqual([]);
    expect(node(r, 'source:clinic.visits@carol')?.rows).toBe(2);
    expect(node(r, 'source:clinic.visits@acme')?.notes).toContain('new landing column "reason" added to raw.visits');
    expect(await rows('SELECT practice_id, visit_id, visited_on, reason FROM raw.visits ORDER BY 1, 2')).toEqual([
      'acme|v1|2024-01-05|checkup',
      'acme|v2|2024-01-02|null',
      'acme|v9|2024-01-06|flu',
      'bravo|b1|2024-01-01|null',
      'bravo|b3|2024-01-03|null',
      'carol|c1|2024-01-01|null',
      'carol|c2|2024-01-02|null',
    ]);
    const again = await run();
    expect(again.results.filter((x) => x.node.startsWith('source:') && x.rows !== 0)).toEqual([]);
  });

  it('unknown practice rows in a shared file are reported once per run, not once per practice', async () => {
    await run(); // the files of PROJECT are loaded (carol's fails)
    writeFileSync(join(dir, 'landing/invoices/2024-02.csv'), 'practice_id,invoice_id,amount\nzed_unknown,i5,1\nzed_unknown,i6,1\nacme,i7,1\n');
    const r = await run();
    expect(r.notices).toEqual(['source:billing.invoices: 2 row(s) in landing files carry a practice_id that is not in tenants.yml; not loaded']);
  });

  it("another practice's rows in a practice's folder are counted with the line of the first, never loaded into either slice", async () => {
    await run(); // the files of PROJECT are loaded (carol's fails)
    writeFileSync(join(dir, 'landing/visits/acme/2024-02-01.csv'), 'practice_id,visit_id,visited_on\nacme,v9,2024-02-01\nbravo,bx1,2024-02-01\nacme,v10,2024-02-02\nbravo,bx2,2024-02-02\n');
    const r = await run();
    const acme = node(r, 'source:clinic.visits@acme')!;
    expect(acme).toMatchObject({ status: 'success', rows: 2 });
    expect(acme.notes).toContain("landing/visits/acme/2024-02-01.csv: 2 row(s) carry another practice's practice_id (first at line 3); not loaded: a practice's folder holds only its own rows");
    expect(await rows("SELECT practice_id, visit_id FROM raw.visits WHERE visit_id LIKE 'bx%' OR visit_id IN ('v9', 'v10') ORDER BY 2")).toEqual(['acme|v10', 'acme|v9']);
  });
});
