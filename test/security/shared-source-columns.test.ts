import { DuckDBInstance } from '@duckdb/node-api';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileWorkspace, runWorkspace } from '../../src/cli/api.ts';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { refuseSharedSourcesWithPractices } from '../../src/execute/shared-sources.ts';
import { Codes } from '../../src/errors.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { relationExists, resultsOf, targetFiles, withWarehouse } from '../support/research-fixture.ts';

/**
 * A source declared `scope: shared` without its columns: compile cannot see that its relation
 * carries practices' rows, and every practice's models read it unfiltered (a shared model in marts
 * is read by every practice role). Before this check `ext.people` (practice_id, name) reached
 * marts.all_people whole, and each practice's slice of a tenant-scoped mart held every practice's
 * names. Now the build that reads it is refused (TSF208) and nothing is written; a shared source
 * without the tenant column is read as before. Counts and codes only in assertions.
 */

const SOURCES = `sources:
  - name: ext
    schema: ext
    scope: shared
    tables:
      - name: people
      - name: people_upper
      - name: codes
`;

const FILES: Record<string, string> = {
  'models/ext_sources.yml': SOURCES,
  'models/marts/all_people.sql': '{{config scope="shared"}}\nselect * from {{source "ext" "people"}}\n',
  // Through a view: the view reads the relation where it is.
  'models/marts/people_view.sql': '{{config scope="shared" materialized="view"}}\nselect * from {{source "ext" "people_upper"}}\n',
  'models/marts/all_people_upper.sql': '{{config scope="shared"}}\nselect * from {{ref "people_view"}}\n',
  'models/marts/people_per_practice.sql': 'select p.practice_id, count(*) as names, max(x.name) as last_name_seen\nfrom {{ref "stg_providers"}} p\ncross join {{source "ext" "people"}} x\ngroup by p.practice_id\n',
  'models/marts/code_list.sql': '{{config scope="shared"}}\nselect code from {{source "ext" "codes"}}\n',
};

describe('a shared source whose relation has the tenant column is read by no build', () => {
  let demo: DemoCopy;
  let run: Awaited<ReturnType<typeof runWorkspace>>;

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 3), files: FILES });
    mkdirSync(join(demo.dir, 'target'), { recursive: true });
    const db = await DuckDBInstance.create(targetFiles(demo.dir).main);
    const conn = await db.connect();
    await conn.run(`CREATE SCHEMA ext;
      CREATE TABLE ext.people AS SELECT * FROM (VALUES ('${demo.tenantIds[0]}', 'a'), ('${demo.tenantIds[1]}', 'b')) v(practice_id, name);
      CREATE TABLE ext.people_upper AS SELECT * FROM (VALUES ('${demo.tenantIds[0]}', 'a')) v("Practice_ID", name);
      CREATE TABLE ext.codes AS SELECT * FROM (VALUES ('E11'), ('I10')) v(code);`);
    conn.closeSync();
    db.closeSync();
    run = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['all_people', 'all_people_upper', 'people_view', '+people_per_practice', 'code_list'] });
  }, 300_000);
  afterAll(() => demo?.remove());

  it('a shared model reading it directly fails with TSF208 naming the source and the column, and is not written', async () => {
    const [r] = resultsOf(run, 'all_people');
    expect(r).toMatchObject({ status: 'error', code: Codes.globalReadsIdentifiable });
    expect(r!.message).toContain('source ext.people');
    expect(r!.message).toContain('practice_id');
    expect(await withWarehouse(demo.dir, (q) => relationExists(q, 'tsform', 'all_people'))).toBe(false);
  });

  it('through a view, with the column spelled in another case: the view is refused and its reader skipped', async () => {
    const [view] = resultsOf(run, 'people_view');
    expect(view).toMatchObject({ status: 'error', code: Codes.globalReadsIdentifiable });
    expect(view!.message).toContain('Practice_ID');
    expect(resultsOf(run, 'all_people_upper').map((r) => r.status)).toEqual(['skipped']);
    expect(await withWarehouse(demo.dir, (q) => relationExists(q, 'tsform', 'all_people_upper'))).toBe(false);
  });

  it("a tenant-scoped mart reading it fails for every practice, none of whose slices is written", async () => {
    const results = resultsOf(run, 'people_per_practice');
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((r) => r.status === 'error' && r.code === Codes.globalReadsIdentifiable)).toBe(true);
    expect(await withWarehouse(demo.dir, (q) => relationExists(q, 'tsform', 'people_per_practice'))).toBe(false);
  });

  it('a shared source without the tenant column is read as before', async () => {
    expect(resultsOf(run, 'code_list').map((r) => r.status)).toEqual(['success']);
    expect(resultsOf(run, 'stg_providers').every((r) => r.status === 'success')).toBe(true);
  });
});

describe('the describe behind the check', () => {
  it('is made once per run, and a failed one is made again by the retry instead of failing every reader', async () => {
    const demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 1), files: FILES });
    try {
      const { manifest } = compileWorkspace(demo.dir, { write: false });
      let calls = 0;
      const adapter = {
        describe: async () => {
          calls++;
          if (calls === 1) throw new Error('connection lost');
          return { kind: 'table', columns: [{ name: 'code', type: 'varchar' }] };
        },
      } as unknown as Adapter;
      const ctx = { adapter, manifest, tenantColumn: 'practice_id' };
      const reader = manifest.models.code_list!;
      await expect(refuseSharedSourcesWithPractices(ctx, reader)).rejects.toThrow('connection lost');
      await refuseSharedSourcesWithPractices(ctx, reader);
      await refuseSharedSourcesWithPractices(ctx, reader);
      expect(calls).toBe(2);
    } finally {
      demo.remove();
    }
  });
});

