import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkspace } from '../../src/cli/api.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import { asSuperuser, cli, failedPairs, startRlsWarehouse, withEnv, type RlsWarehouse } from '../support/rls-fixture.ts';

/**
 * `partition_by_practice` on a PostgreSQL target: tenant-scoped tables are LIST-partitioned for
 * the named practices with a HASH-subpartitioned DEFAULT for the rest; isolation is unchanged
 * (policies verify passes), partitions cannot be read directly by a practice, and a query
 * carrying the practice predicate touches one partition.
 */

const TABLE = 'practice_daily_activity';
let wh: RlsWarehouse;
let listed: string[];
let others: string[];

beforeAll(async () => {
  wh = await startRlsWarehouse({
    tenants: 8,
    policies: (yml) => yml.replace('practice_roles: [marts]', 'practice_roles: [staging, marts]'),
    tsformYml: (yml, ids) => {
      listed = [...ids].sort().slice(0, 2);
      others = [...ids].sort().slice(2);
      return yml.replace('    url_env: TSFORM_PG_URL   # never a password in this file\n', `    url_env: TSFORM_PG_URL\n    partition_by_practice:\n      list: [${listed.join(', ')}]\n      hash_partitions: 4\n`);
    },
  });
}, 600_000);
afterAll(async () => {
  await wh?.stop();
});

/** The demo's policies.yml names practice roles `practice_{tenant}`. */
const practiceRoleName = (id: string) => `practice_${id}`;
const sql = (text: string, values: unknown[] = []) => asSuperuser(wh.superUrl, (c) => c.query(text, values));

describe('partition_by_practice on PostgreSQL', () => {
  it('creates every tenant-scoped table as LIST partitions for the named practices and HASH for the rest', async () => {
    const parents = await sql(
      `SELECT n.nspname || '.' || c.relname AS rel FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('staging', 'marts', 'pseudo') AND NOT c.relispartition ORDER BY 1`,
    );
    expect(parents.rows.map((r) => r.rel)).toContain(`marts.${TABLE}`);
    expect(parents.rows.map((r) => r.rel)).toContain('staging.stg_encounters');
    const leaves = await sql(`SELECT relid::regclass::text AS rel, isleaf FROM pg_partition_tree($1::regclass) WHERE level > 0 ORDER BY 1`, [`marts.${TABLE}`]);
    expect(leaves.rows.filter((r) => r.isleaf).length).toBe(2 + 4);
    // each listed practice's rows are in its own partition, and nowhere else
    for (const [i, id] of listed.entries()) {
      const own = await sql(`SELECT count(*)::int AS n, count(*) FILTER (WHERE practice_id <> $1)::int AS foreign FROM marts.${quoteIdent(`${TABLE}__p${i + 1}`)}`, [id]);
      const all = await sql(`SELECT count(*)::int AS n FROM marts.${quoteIdent(TABLE)} WHERE practice_id = $1`, [id]);
      expect(own.rows[0]).toEqual({ n: all.rows[0]!.n, foreign: 0 });
    }
    const rest = await sql(`SELECT count(*)::int AS n FROM marts.${quoteIdent(`${TABLE}__rest`)} WHERE practice_id = ANY($1::text[])`, [listed]);
    expect(rest.rows[0]!.n).toBe(0);
    const spread = await sql(`SELECT count(DISTINCT tableoid)::int AS n FROM marts.${quoteIdent(`${TABLE}__rest`)}`);
    expect(spread.rows[0]!.n).toBeGreaterThan(1);
  });

  it('keeps isolation: policies verify passes for every practice role', async () => {
    const run = await cli(['policies', 'verify', '--project-dir', wh.demo.dir, '--target', 'postgres'], { TSFORM_PG_ADMIN_URL: wh.superUrl, TSFORM_PG_URL: undefined });
    expect(failedPairs(run.stdout), run.stdout).toEqual([]);
    expect(run.code, run.stderr).toBe(0);
  });

  it('says that the catalog shows every role each partition\'s row count, and a listed practice\'s id beside it (which it does)', async () => {
    expect(wh.applied).toMatch(/partitioned by practice: every role can read each partition's row count and size in pg_class and pg_stat_user_tables.*the 2 listed practice\(s\)/);
    // As another practice: what the note says, measured (counts and ids of the test fleet only).
    const seen = await asSuperuser(wh.superUrl, async (c) => {
      await c.query(`SET ROLE ${quoteIdent(practiceRoleName(others[0]!))}`);
      const r = await c.query(
        `SELECT pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'marts' AND c.relname = $1`,
        [`${TABLE}__p1`],
      );
      return String(r.rows[0]?.bound);
    });
    expect(seen).toContain(listed[0]!);
  });

  it('refuses a practice role that reads a partition directly, its own or another', async () => {
    for (const [who, partition] of [
      [listed[0]!, `${TABLE}__p1`],
      [others[0]!, `${TABLE}__p1`],
      [others[0]!, `${TABLE}__h0`],
    ] as const) {
      const denied = await asSuperuser(wh.superUrl, async (c) => {
        await c.query(`SET ROLE ${quoteIdent(practiceRoleName(who))}`);
        return c.query(`SELECT count(*) FROM marts.${quoteIdent(partition)}`).then(
          () => 'read',
          (err: { code?: string }) => err.code,
        );
      });
      expect(denied, `${partition}`).toBe('42501');
    }
  });

  it('prunes to one partition when a query carries the practice predicate, with row-level security on', async () => {
    for (const id of [listed[1]!, others[0]!]) {
      const plan = await asSuperuser(wh.superUrl, async (c) => {
        await c.query(`SET ROLE ${quoteIdent(practiceRoleName(id))}`);
        const { rows } = await c.query(`EXPLAIN (FORMAT JSON) SELECT * FROM marts.${quoteIdent(TABLE)} WHERE practice_id = ANY($1::varchar[])`, [[id]]);
        return JSON.stringify(rows[0]);
      });
      const scanned = [...plan.matchAll(/"Relation Name":\s*"([^"]+)"/g)].map((m) => m[1]).filter((r) => r!.startsWith(TABLE));
      expect(scanned, id === listed[1] ? 'listed practice' : 'hashed practice').toHaveLength(1);
    }
  });

  it('runs again (merges and slice replaces into partitions) with the same rows', async () => {
    const before = await sql(`SELECT practice_id, count(*)::int AS n FROM marts.${quoteIdent(TABLE)} GROUP BY 1 ORDER BY 1`);
    const again = await withEnv({ TSFORM_PG_URL: wh.ownerUrl }, () => runWorkspace({ projectDir: wh.demo.dir, command: 'run', target: 'postgres' }));
    expect(again.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.message}`)).toEqual([]);
    const after = await sql(`SELECT practice_id, count(*)::int AS n FROM marts.${quoteIdent(TABLE)} GROUP BY 1 ORDER BY 1`);
    expect(after.rows).toEqual(before.rows);
  });
});
