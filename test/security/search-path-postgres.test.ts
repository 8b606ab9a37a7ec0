import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import { Codes } from '../../src/errors.ts';
import { REPO_ROOT } from '../support/demo-project.ts';
import { demoCopyErrors } from '../support/compile-errors.ts';
import { asSuperuser, cli, OWNER, startRlsWarehouse, type RlsWarehouse } from '../support/rls-fixture.ts';

/**
 * CVE-2018-1058 against the owner. A model calls functions and operators by their bare name; the
 * server picks the best match across pg_catalog and every schema on the session's search_path. On
 * a database created before PostgreSQL 15 every role may create in `public`, which is on every
 * role's default path: a function there that matches a call more exactly than pg_catalog's runs
 * instead, as the owner, who reads every practice's rows and may disable their policies. On main
 * the build below called both planted objects as tsform_owner (a row each in planted_calls).
 */

const MODEL = `select
  practice_id,
  date_trunc('month', activity_date) as activity_month,
  sum(case when cast(encounter_class as varchar) = 'ambulatory' then encounters else 0 end) as ambulatory_encounters,
  sum(encounters) as encounters
from {{ref "practice_daily_activity"}}
group by practice_id, date_trunc('month', activity_date)
`;

/** What a role that may only create in `public` leaves there: better matches than pg_catalog's. */
const PLANT = [
  'GRANT CREATE ON SCHEMA public TO PUBLIC',
  'CREATE ROLE mallory LOGIN',
  'SET ROLE mallory',
  'CREATE TABLE public.planted_calls (planted text, caller text)',
  'GRANT INSERT ON public.planted_calls TO PUBLIC',
  // date_trunc has no (text, date) form in pg_catalog: this one is an exact match for a date column.
  `CREATE FUNCTION public.date_trunc(text, date) RETURNS timestamp LANGUAGE plpgsql AS $$
     BEGIN INSERT INTO public.planted_calls VALUES ('date_trunc', current_user); RETURN pg_catalog.date_trunc($1, $2::timestamp); END $$`,
  // pg_catalog compares varchar through text's operator: this one is exact for varchar = varchar.
  `CREATE FUNCTION public.planted_eq(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS $$
     BEGIN INSERT INTO public.planted_calls VALUES ('=', current_user); RETURN $1::text OPERATOR(pg_catalog.=) $2::text; END $$`,
  'CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.planted_eq)',
  'RESET ROLE',
];

describe('functions and operators planted in public are never called by tsform (PostgreSQL)', () => {
  let wh: RlsWarehouse;
  beforeAll(async () => {
    wh = await startRlsWarehouse({
      tenants: 3,
      files: { 'models/marts/activity_by_month.sql': MODEL },
      beforeBuild: (superUrl) =>
        asSuperuser(superUrl, async (c) => {
          for (const sql of PLANT) await c.query(sql);
          // The owner's own default path names public first, as an administrator might have set it.
          await c.query(`ALTER ROLE ${OWNER} SET search_path = public, pg_catalog`);
        }),
    });
  }, 600_000);
  afterAll(async () => wh?.stop());

  it('the build and policies apply resolved every call in pg_catalog: nothing planted ran', async () => {
    const calls = await asSuperuser(wh.superUrl, (c) => c.query('SELECT planted, caller, count(*)::int AS n FROM public.planted_calls GROUP BY 1, 2 ORDER BY 1, 2'));
    expect(calls.rows).toEqual([]);
    const built = await asSuperuser(wh.superUrl, (c) => c.query('SELECT count(*)::int AS n, sum(encounters)::int AS e FROM marts.activity_by_month'));
    expect(built.rows[0]?.n).toBeGreaterThan(0);
    // The planted objects are still there and still win where the path reaches them.
    const planted = await asSuperuser(wh.superUrl, async (c) => {
      await c.query('SET search_path = public');
      await c.query(`SELECT date_trunc('month', current_date), 'a'::varchar = 'a'`);
      return c.query('SELECT count(*)::int AS n FROM public.planted_calls');
    });
    expect(planted.rows[0]?.n).toBe(2);
  });

  it("neither the role's default nor the URL's options change a tsform session's path", async () => {
    const url = new URL(wh.ownerUrl);
    url.searchParams.set('options', '-c search_path=public');
    const db = await createPostgresAdapter({ url: url.toString(), poolSize: 1 });
    try {
      const { rows } = await db.query('SELECT current_schemas(false)::text AS path');
      expect(rows[0]?.path).toBe('{pg_catalog}');
    } finally {
      await db.close();
    }
  });

  it('capture sessions on an OLTP search pg_catalog only too, whatever the URL says', async () => {
    const url = new URL(wh.ownerUrl);
    url.searchParams.set('options', '-c search_path=public');
    const oltp = await PgOltpSource.open(url.toString(), { poolSize: 1 });
    try {
      const { rows } = await oltp.query('SELECT current_schemas(false)::text AS path, current_setting($1) AS zone', ['TimeZone']);
      expect(rows[0]).toEqual({ path: '{pg_catalog}', zone: 'UTC' });
    } finally {
      await oltp.close();
    }
  });

  it("the target's search_path adds trusted schemas after pg_catalog, in order", async () => {
    await asSuperuser(wh.superUrl, async (c) => {
      await c.query('CREATE SCHEMA ext');
      await c.query('CREATE FUNCTION ext.add_one(int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT $1 + 1 $$');
      await c.query(`GRANT USAGE ON SCHEMA ext TO ${OWNER}`);
    });
    const plain = await createPostgresAdapter({ url: wh.ownerUrl, poolSize: 1 });
    try {
      const missing = await plain.query('SELECT add_one(1) AS v').then(
        () => 'no error',
        (e: unknown) => plain.describeError(e),
      );
      expect(missing).toMatch(/^42883: function add_one\(integer\) does not exist.*\(tsform's sessions search pg_catalog only: list an extension's schema in the target's search_path in tsform.yml\)$/);
    } finally {
      await plain.close();
    }
    const withExt = await createPostgresAdapter({ url: wh.ownerUrl, poolSize: 1, searchPath: ['ext'] });
    try {
      const { rows } = await withExt.query('SELECT add_one(1) AS v, current_schemas(false)::text AS path');
      expect(rows[0]).toEqual({ v: 2, path: '{pg_catalog,ext}' });
    } finally {
      await withExt.close();
    }
  });

  it('refuses a search_path schema that another role may create in, or that does not exist (TSF418)', async () => {
    await asSuperuser(wh.superUrl, async (c) => {
      await c.query('CREATE SCHEMA ext_granted');
      await c.query('GRANT USAGE, CREATE ON SCHEMA ext_granted TO mallory');
      await c.query('CREATE SCHEMA ext_owned AUTHORIZATION mallory');
      await c.query(`GRANT USAGE ON SCHEMA ext_granted, ext_owned TO ${OWNER}`);
      await c.query(`CREATE SCHEMA ext_mine AUTHORIZATION ${OWNER}`);
    });
    const refusal = async (searchPath: string[]) =>
      createPostgresAdapter({ url: wh.ownerUrl, poolSize: 1, searchPath }).then(
        async (db) => {
          await db.close();
          return 'opened';
        },
        (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
      );
    // public: CREATE granted to PUBLIC, as on a database created before PostgreSQL 15
    expect(await refusal(['public'])).toMatch(/^TSF418: .*'public' may be created in by PUBLIC/);
    expect(await refusal(['ext', 'ext_granted'])).toMatch(/^TSF418: .*'ext_granted' may be created in by mallory \(REVOKE CREATE ON SCHEMA "ext_granted" FROM "mallory"\)/);
    expect(await refusal(['ext_owned'])).toMatch(/^TSF418: .*'ext_owned' may be created in by mallory/);
    expect(await refusal(['not_there'])).toMatch(/^TSF418: .*'not_there' does not exist/);
    // the building role's own schema and a superuser's are fine
    expect(await refusal(['ext_mine', 'ext'])).toBe('opened');
    // through the CLI, the run stops before any model with the code and tsform.yml
    const config = join(wh.demo.dir, 'tsform.yml');
    writeFileSync(config, readFileSync(config, 'utf8').replace('    type: postgres\n', '    type: postgres\n    search_path: [public]\n'));
    const run = await cli(['run', '--project-dir', wh.demo.dir, '--target', 'postgres'], { TSFORM_PG_URL: wh.ownerUrl });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/TSF418.*'public' may be created in by PUBLIC/);
  });
});

describe("tsform.yml's search_path (compile)", () => {
  const config = readFileSync(join(REPO_ROOT, 'tsform.yml'), 'utf8');
  const withPath = (path: string, type = 'postgres') => ({ 'tsform.yml': config.replace(`    type: ${type}\n`, `    type: ${type}\n    search_path: ${path}\n`) });
  const line = (text: string) => text.split('\n').findIndex((l) => l.includes('search_path:')) + 1;
  const brief = (files: Record<string, string>) => demoCopyErrors(files).map((d) => ({ code: d.code, file: d.file, line: d.line }));

  it('trusted schemas compile', () => {
    expect(brief(withPath('[public, postgis, "Ext"]'))).toEqual([]);
  });

  for (const [path, why] of [
    ['[vault]', "one of the project's schemas"],
    ['[MARTS]', "one of the project's schemas"],
    ['[research]', "one of the project's schemas"],
    ['[tsform_security]', 'the row-level security schema'],
    ['[pg_catalog]', 'pg_catalog is searched first'],
    ['[pg_temp]', 'pg_catalog is searched first'],
    ['[information_schema]', 'pg_catalog is searched first'],
    ['[ext, EXT]', 'twice'],
  ] as const) {
    it(`search_path: ${path} is TSF205 at its line`, () => {
      const files = withPath(path);
      const errors = demoCopyErrors(files);
      expect(errors.map((d) => ({ code: d.code, file: d.file, line: d.line }))).toEqual([{ code: Codes.invalidConfig, file: 'tsform.yml', line: line(files['tsform.yml']) }]);
      expect(errors[0]!.message).toContain(why);
    });
  }

  it('a name that is not a simple identifier is refused', () => {
    const files = withPath('["ext, public"]');
    expect(brief(files)).toEqual([{ code: Codes.invalidIdentifier, file: 'tsform.yml', line: line(files['tsform.yml']) }]);
  });

  it('a DuckDB target has no search_path', () => {
    const files = withPath('[ext]', 'duckdb');
    expect(brief(files)).toEqual([{ code: Codes.invalidConfig, file: 'tsform.yml', line: line(files['tsform.yml']) }]);
  });
});
