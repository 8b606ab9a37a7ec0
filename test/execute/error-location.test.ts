import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { compileDir, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';
import { locateModelError } from '../../src/execute/error-location.ts';
import { quoteRelation } from '../../src/sql/quote.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * Issue 15 item 7 on both engines: a model's compiled SQL sent the way strategies send it
 * (`CREATE TEMPORARY TABLE … AS` + the SELECT, `$1` bound), an error in it, and where the adapter
 * and the line map put it: the model file's line, whatever tsform's CTEs added above.
 */

const MODEL = [
  '-- Visits per practice.', // 1
  '{{config materialized="table"}}', // 2
  'with v as (', // 3
  '  select * from {{ref "stg"}}', // 4
  ')', // 5
  'select', // 6
  '  practice_id,', // 7
  '  no_such_column as x', // 8
  'from v', // 9
  '',
].join('\n');

const dir = writeTempProject({
  ...MINIMAL_PROJECT,
  'tsform.yml': 'name: generated\nmodels:\n  scope: tenant\n',
  'models/stg.sql': 'select 1 as practice_id, 2 as y\n',
  'models/visits.sql': MODEL,
});
const { manifest } = compileDir(dir);
const node = manifest.models.visits!;

afterAll(removeTempProjects);

async function failure(adapter: Adapter): Promise<unknown> {
  await adapter.ensureSchema(manifest.models.stg!.schema);
  await adapter.query(`CREATE TABLE ${quoteRelation(manifest.models.stg!.schema, 'stg')} AS SELECT 'acme' AS practice_id, 2 AS y`);
  return adapter
    .transaction((s) => s.createTempTableAs('tsf_stage', node.compiled_sql, [['acme']]))
    .then(
      () => undefined,
      (e: unknown) => e,
    );
}

describe('a database error at the model line', () => {
  it('the compiled SQL has tsform lines above the model (its input CTE), so the engine counts other lines', () => {
    expect(node.compiled_sql).toContain('$1');
    expect(node.compiled_sql.split('\n').findIndex((l) => l.includes('no_such_column')) + 1).not.toBe(8);
  });

  it('DuckDB', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tsform-loc-'));
    const adapter = await DuckDBAdapter.open({ path: join(tmp, 'w.duckdb'), connections: 1 });
    try {
      const err = await failure(adapter);
      expect(err).toBeDefined();
      const at = locateModelError(adapter.errorPosition(err), node, dir);
      expect(at?.where).toBe('models/visits.sql:8:3');
      expect(at?.excerpt).toEqual(['  8 |   no_such_column as x', '    |   ^']);
    } finally {
      await adapter.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  describe('PostgreSQL', () => {
    let server: ThrowawayPostgres;
    beforeAll(async () => {
      server = await startThrowawayPostgres();
    }, 120_000);
    afterAll(async () => server?.stop());

    it('position → model line and column', async () => {
      const adapter = await createPostgresAdapter({ url: server.url, poolSize: 1 });
      try {
        const err = await failure(adapter);
        expect((err as { code?: string }).code).toBe('42703');
        const at = locateModelError(adapter.errorPosition(err), node, dir);
        expect(at?.where).toBe('models/visits.sql:8:3');
      } finally {
        await adapter.close();
      }
    });
  });
});

describe('the caret under a tab-indented line', () => {
  it('keeps the tabs before it, so a terminal puts it under the word', () => {
    const tabbed = writeTempProject({
      ...MINIMAL_PROJECT,
      'tsform.yml': 'name: generated\nmodels:\n  scope: tenant\n',
      'models/stg.sql': 'select 1 as practice_id, 2 as y\n',
      'models/visits.sql': 'select\n\tpractice_id,\n\t\tno_such_column as x\nfrom {{ref "stg"}}\n',
    });
    const visits = compileDir(tabbed).manifest.models.visits!;
    const position = { statement: `CREATE TABLE t AS ${visits.compiled_sql}`, offset: 0 };
    position.offset = position.statement.indexOf('no_such_column');
    const at = locateModelError(position, visits, tabbed);
    expect(at?.where).toBe('models/visits.sql:3:3');
    expect(at?.excerpt).toEqual(['  3 | \t\tno_such_column as x', '    | \t\t^']);
  });
});
