import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { Codes } from '../../src/errors.ts';
import { scaffoldProject } from '../../src/init/scaffold-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { withEnv } from '../support/rls-fixture.ts';

/**
 * An incremental model's unique_key must be a key of the rows it writes (execute/strategies/
 * unique-key.ts). Red-team, in a `tsform init` project: `unique_key="visit_type"` (3 values in a
 * practice's 63 rows) loaded the 63 rows without a word, and the next run's merge deleted every
 * row sharing a staged key: 3 rows per practice were left, exit 0. And a unique_key the SQL does
 * not output built once, then failed every practice with the engine's binder error about tsform's
 * alias `st`. Now each write is checked first, for every practice, on both engines.
 */

const PRACTICES = ['demo_alpine_clinic', 'demo_north_clinic', 'demo_west_clinic'];
const VALUES = /office|telehealth|2024-/; // key values of the init data: never in a message

const incremental = (key: string) => `{{config materialized="incremental" unique_key="${key}"}}
select practice_id, clinic_day, visit_type, visits, updated_at
from {{source "clinic" "daily_visits"}}
{{#if is_incremental}}
where updated_at >= (select max(updated_at) from {{this}})
{{/if}}
`;

interface Engine {
  name: string;
  run(dir: string, select: string[], fullRefresh?: boolean): Promise<RunResults>;
  /** Row counts of a relation per practice ({} when it does not exist), or its total under ''. */
  counts(dir: string, relation: string, perPractice?: boolean): Promise<Record<string, number>>;
}

let server: ThrowawayPostgres | undefined;
const dirs: string[] = [];
afterAll(async () => {
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const duckdb: Engine = {
  name: 'duckdb',
  run: (dir, select, fullRefresh = false) => runWorkspace({ projectDir: dir, command: 'run', select, fullRefresh }),
  async counts(dir, relation, perPractice = true) {
    const db = await DuckDBAdapter.open({ path: join(dir, 'target/tsform.duckdb'), connections: 1 });
    try {
      const [schema, name] = relation.split('.');
      const exists = await db.query(`SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2`, [schema!, name!]);
      if (Number(exists.rows[0]!.n) === 0) return {};
      const r = await db.query(perPractice ? `SELECT practice_id AS k, count(*) AS n FROM ${relation} GROUP BY 1` : `SELECT '' AS k, count(*) AS n FROM ${relation}`);
      return Object.fromEntries(r.rows.map((x) => [String(x.k), Number(x.n)]));
    } finally {
      await db.close();
    }
  },
};

/** One database per project, so that projects share no tables. */
const pgUrls = new Map<string, string>();
const postgres: Engine = {
  name: 'postgres',
  async run(dir, select, fullRefresh = false) {
    if (!pgUrls.has(dir)) pgUrls.set(dir, (await server!.createDatabase()).url);
    return withEnv({ TSFORM_PG_URL: pgUrls.get(dir) }, () => runWorkspace({ projectDir: dir, command: 'run', target: 'postgres', select, fullRefresh }));
  },
  async counts(dir, relation, perPractice = true) {
    const c = new pg.Client({ connectionString: pgUrls.get(dir) });
    await c.connect();
    try {
      if ((await c.query('SELECT to_regclass($1) AS r', [relation])).rows[0].r === null) return {};
      const r = await c.query(perPractice ? `SELECT practice_id AS k, count(*) AS n FROM ${relation} GROUP BY 1` : `SELECT '' AS k, count(*) AS n FROM ${relation}`);
      return Object.fromEntries(r.rows.map((x) => [String(x.k), Number(x.n)]));
    } finally {
      await c.end();
    }
  },
};

function project(files: Record<string, string>): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'tsform-ukey-')), 'p');
  dirs.push(dir);
  scaffoldProject(dir);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

const outcomes = (r: RunResults, model: string) => Object.fromEntries(r.results.filter((x) => x.model === model && x.kind === 'build').map((x) => [x.tenant ?? '', `${x.status}${x.code ? ` ${x.code}` : ''}`]));
const messages = (r: RunResults, model: string) => r.results.filter((x) => x.model === model && x.status === 'error').map((x) => x.message ?? '');
const each = (v: string) => Object.fromEntries(PRACTICES.map((p) => [p, v]));

describe.each([duckdb, postgres])('unique_key is a key of the rows written, on $name', (engine) => {
  beforeAll(async () => {
    if (engine.name === 'postgres') server ??= await startThrowawayPostgres();
  }, 120_000);

  it('a first build whose key repeats is refused for every practice, nothing written, counts and no values in the message', async () => {
    const dir = project({ 'models/staging/stg_inc2.sql': incremental('visit_type') });
    const run = await engine.run(dir, ['+stg_inc2']);
    expect(outcomes(run, 'stg_inc2')).toEqual(each(`error ${Codes.uniqueKeyDuplicates}`));
    for (const m of messages(run, 'stg_inc2')) {
      expect(m).toMatch(/^models\/staging\/stg_inc2\.sql: stg_inc2: unique_key is not unique .*: 3 key\(s\) \(practice_id, visit_type\) occur in more than one row \(63 rows\) \(unique_key at line 1\); nothing was written for this practice/);
      expect(m).not.toMatch(VALUES);
    }
    expect(await engine.counts(dir, 'staging.stg_inc2')).toEqual({});
  }, 120_000);

  it('a merge whose rows repeat a key fails that practice alone and leaves its slice as it was; the others merge', async () => {
    const dir = project({ 'models/staging/stg_inc3.sql': incremental('clinic_day,visit_type') });
    expect(outcomes(await engine.run(dir, ['+stg_inc3']), 'stg_inc3')).toEqual(each('success'));
    expect(await engine.counts(dir, 'staging.stg_inc3')).toEqual(Object.fromEntries(PRACTICES.map((p) => [p, 63])));
    // New rows: one for west; two for north under one key (clinic_day, visit_type).
    appendFileSync(
      join(dir, 'data/daily_visits.csv'),
      [
        'demo_west_clinic,2024-03-01,office,5,2030-01-01 00:00:00+00',
        'demo_north_clinic,2024-03-01,office,5,2030-01-01 00:00:00+00',
        'demo_north_clinic,2024-03-01,office,6,2030-01-01 00:00:00+00',
        '',
      ].join('\n'),
    );
    const run = await engine.run(dir, ['+stg_inc3']);
    expect(outcomes(run, 'stg_inc3')).toEqual({ demo_alpine_clinic: 'success', demo_north_clinic: `error ${Codes.uniqueKeyDuplicates}`, demo_west_clinic: 'success' });
    expect(messages(run, 'stg_inc3')[0]).toMatch(/1 key\(s\) \(practice_id, clinic_day, visit_type\) occur in more than one row \(2 rows\)/);
    expect(await engine.counts(dir, 'staging.stg_inc3')).toEqual({ demo_alpine_clinic: 63, demo_north_clinic: 63, demo_west_clinic: 64 });
  }, 180_000);

  it('a global incremental model whose key repeats writes nothing', async () => {
    const sql = `{{config materialized="incremental" scope="global" unique_key="visit_type"}}\nselect visit_type, description from {{ref "visit_types"}}\nunion all\nselect visit_type, description from {{ref "visit_types"}}\n`;
    const dir = project({ 'models/marts/all_types.sql': sql });
    const run = await engine.run(dir, ['+all_types']);
    expect(outcomes(run, 'all_types')).toEqual({ '': `error ${Codes.uniqueKeyDuplicates}` });
    expect(messages(run, 'all_types')[0]).toMatch(/3 key\(s\) \(visit_type\) occur in more than one row \(6 rows\).*; nothing was written\./);
    expect(await engine.counts(dir, 'marts.all_types', false)).toEqual({});
  }, 120_000);

  it('rows with a NULL key part are refused (a merge never matches them: each run wrote them again), nothing written', async () => {
    const sql = `{{config materialized="incremental" unique_key="id"}}\nselect practice_id, cast(null as integer) as id, count(*) as v from {{source "clinic" "daily_visits"}} group by practice_id\n`;
    const dir = project({ 'models/staging/stg_nullkey.sql': sql });
    const run = await engine.run(dir, ['+stg_nullkey']);
    expect(outcomes(run, 'stg_nullkey')).toEqual(each(`error ${Codes.uniqueKeyDuplicates}`));
    expect(messages(run, 'stg_nullkey')[0]).toMatch(/stg_nullkey: 1 row\(s\) this build would write have a NULL in unique_key \(practice_id, id\)/);
    expect(await engine.counts(dir, 'staging.stg_nullkey')).toEqual({});
  }, 120_000);

  it('a unique_key the model does not output fails its first build with TSF403 naming the column, not an internal alias', async () => {
    const dir = project({ 'models/staging/stg_inc4.sql': incremental('visit_kind') });
    const run = await engine.run(dir, ['+stg_inc4']);
    expect(outcomes(run, 'stg_inc4')).toEqual(each(`error ${Codes.schemaChanged}`));
    for (const m of messages(run, 'stg_inc4')) {
      expect(m).toMatch(/stg_inc4: unique_key 'visit_kind' is not a column the model outputs \(practice_id, clinic_day, visit_type, visits, updated_at\) \(unique_key at line 1\); nothing was written/);
      expect(m).not.toMatch(/"st"/);
    }
    expect(await engine.counts(dir, 'staging.stg_inc4')).toEqual({});
  }, 120_000);
});
