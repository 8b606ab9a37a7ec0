import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { compileDir, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';
import { locateModelError, locateValueError } from '../../src/execute/error-location.ts';
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

    it('a value error with no position (to_date): the model\'s only date conversion', async () => {
      const adapter = await createPostgresAdapter({ url: server.url, poolSize: 1 });
      try {
        const err = await adapter.query(`SELECT to_date(v, 'YYYY-MM-DD') FROM (VALUES ('01/02/2024')) AS t(v)`).then(
          () => undefined,
          (e: unknown) => e,
        );
        const text = adapter.describeError(err);
        expect(text).toMatch(/^22008: /);
        expect(locateValueError(text, values.dates, valuesDir)?.where).toBe("models/dates.sql:4:3 (the model's only date or time conversion)");
      } finally {
        await adapter.close();
      }
    });

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

const valuesDir = writeTempProject({
  ...MINIMAL_PROJECT,
  'tsform.yml': 'name: generated\nmodels:\n  scope: tenant\n',
  'models/stg.sql': "select 'acme' as practice_id, '2024-01-01' as day\n",
  // the literal and the comment name strptime too: neither is a call
  'models/one.sql': "select practice_id, 'strptime(' as label, -- strptime(\n  day,\n  strptime(day, '%Y-%m-%d') as at\nfrom {{ref \"stg\"}}\n",
  'models/two.sql': "select practice_id,\n  strptime(day, '%Y-%m-%d') as a,\n  strptime(day, '%d/%m/%Y') as b\nfrom {{ref \"stg\"}}\n",
  'models/dates.sql': "select practice_id,\n  day,\n  length(day) as n,\n  to_date(day, 'YYYY-MM-DD') as d\nfrom {{ref \"stg\"}}\n",
});
const values = (() => {
  const m = compileDir(valuesDir).manifest.models;
  return { one: m.one!, two: m.two!, dates: m.dates! };
})();

describe('a value error the engine places nowhere', () => {
  it("DuckDB's strptime: the model's only call, or its lines when it makes a few", async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tsform-loc-'));
    const adapter = await DuckDBAdapter.open({ path: join(tmp, 'w.duckdb'), connections: 1 });
    try {
      const err = await adapter.query(`SELECT strptime(v, '%Y-%m-%d') FROM (VALUES ('01/02/2024')) AS t(v)`).then(
        () => undefined,
        (e: unknown) => e,
      );
      const text = adapter.describeError(err);
      expect(adapter.errorPosition(err)).toBeUndefined();
      expect(text).not.toContain('01/02');
      const one = locateValueError(text, values.one, valuesDir);
      expect(one?.where).toBe("models/one.sql:3:3 (the model's only strptime call)");
      expect(one?.excerpt).toEqual(["  3 |   strptime(day, '%Y-%m-%d') as at", '    |   ^']);
      expect(locateValueError(text, values.two, valuesDir)).toEqual({ where: 'models/two.sql (one of the strptime calls at lines 2, 3)', excerpt: [] });
      // an error of another kind, or a model without such a call, is placed nowhere as before
      expect(locateValueError(text, values.dates, valuesDir)).toBeUndefined();
      expect(locateValueError('Binder Error: something else', values.one, valuesDir)).toBeUndefined();
    } finally {
      await adapter.close();
      rmSync(tmp, { recursive: true, force: true });
    }
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
