import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileWorkspace } from '../../src/cli/api.ts';
import { showQuery } from '../../src/cli/show.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { cli } from '../support/cli.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * Issue 15: `tsform show --select <model> --tenant <id> [--limit n]` previews one practice's rows,
 * with the warehouse's isolation: exactly one practice, bound as a parameter; no research or vault
 * relation. On DuckDB and PostgreSQL.
 */

type Row = Record<string, unknown>;
const rowsOf = (out: string[]) => out.map((l) => JSON.parse(l) as Row);

describe('tsform show: what it refuses, before any database', () => {
  const demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 2) });
  afterAll(() => demo.remove());
  const [a, b] = [...demo.tenantIds].sort() as [string, string];

  it('binds the practice and the limit: the SQL text never holds the id', () => {
    const ws = compileWorkspace(demo.dir, { write: false });
    const q = showQuery(ws, { select: ['provider_panel'], tenant: [a], limit: 7 });
    expect(q.sql).not.toContain(a);
    expect(q.params).toEqual([[a], a, 7]);
    // A view over every practice (no $1 inside): the outer filter alone binds the practice.
    const view = showQuery(ws, { select: ['practice_patient_roster'], tenant: [a], limit: 3 });
    expect(view.sql).toMatch(/WHERE "practice_id" = \$1 LIMIT \$2$/);
    expect(view.params).toEqual([a, 3]);
  });

  it('a tenant-scoped model needs exactly one practice id; research, vault and global models are refused (TSF308)', async () => {
    const cases: [string[], string][] = [
      [['--select', 'provider_panel'], 'exactly one practice'],
      [['--select', 'provider_panel', '--tenant', `${a},${b}`], 'exactly one practice'],
      [['--select', 'provider_panel', '--tenant', 'tag:ci-sample'], 'exactly one practice'],
      [['--select', 'stg_encounters+'], 'show previews one model'],
      [['--select', 'pseudo_encounters', '--tenant', a], 'research relation'],
      [['--select', 'source:ehr.patients', '--tenant', a], 'show previews models'],
    ];
    for (const [args, message] of cases) {
      const r = await cli('show', '--project-dir', demo.dir, ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toContain('TSF308');
      expect(r.err, args.join(' ')).toContain(message);
    }
    const hostile = await cli('show', '--project-dir', demo.dir, '--select', 'provider_panel', '--tenant', "x' or '1'='1");
    expect(hostile.code).toBe(2);
    expect(hostile.err).toContain('TSF303');
    const unknown = await cli('show', '--project-dir', demo.dir, '--select', 'provider_panel', '--tenant', 'p_not_there');
    expect(unknown.err).toContain('TSF302');
    expect((await cli('show', '--project-dir', demo.dir, '--select', 'provider_panel', '--tenant', a, '--limit', '0')).code).toBe(2);
  });
});

for (const target of ['duckdb', 'postgres'] as const) {
  describe(`tsform show on ${target}`, () => {
    let demo: DemoCopy;
    let pg: ThrowawayPostgres | undefined;
    let a: string;
    let b: string;
    const on = target === 'postgres' ? ['--target', 'postgres'] : [];

    beforeAll(async () => {
      // b is one of the demo's large practices: enough rows to test --limit.
      demo = copyDemoProject({ tenants: (ids) => [[...ids].sort()[0]!, 'p_79a06fd69f'] });
      [a, b] = [[...demo.tenantIds].sort()[0]!, 'p_79a06fd69f'];
      if (target === 'postgres') {
        pg = await startThrowawayPostgres();
        process.env.TSFORM_PG_URL = pg.url;
      }
      const built = await cli('run', '--project-dir', demo.dir, ...on, '--select', '+provider_panel', '+practice_patient_roster', '--log-format', 'json');
      expect(built.code, built.err).toBe(0);
    }, 240_000);
    afterAll(async () => {
      delete process.env.TSFORM_PG_URL;
      demo?.remove();
      await pg?.stop();
    });

    it('shows rows of that practice only, at most --limit', async () => {
      for (const t of [a, b]) {
        const r = await cli('show', '--project-dir', demo.dir, ...on, '--select', 'provider_panel', '--tenant', t, '--limit', '3', '--output', 'json');
        expect(r.code, r.err).toBe(0);
        const rows = rowsOf(r.out);
        expect(rows.length).toBeGreaterThan(0);
        expect(rows.length).toBeLessThanOrEqual(3);
        expect(new Set(rows.map((x) => x.practice_id))).toEqual(new Set([t]));
      }
    });

    it('a view over every practice is still one practice', async () => {
      const r = await cli('show', '--project-dir', demo.dir, ...on, '--select', 'practice_patient_roster', '--tenant', b, '--limit', '1000', '--output', 'json');
      expect(r.code, r.err).toBe(0);
      const rows = rowsOf(r.out);
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((x) => x.practice_id === b)).toBe(true);
    });

    it('--limit caps the rows (the large practice has hundreds of encounters)', async () => {
      const five = await cli('show', '--project-dir', demo.dir, ...on, '--select', 'stg_encounters', '--tenant', b, '--limit', '5', '--output', 'json');
      expect(five.code, five.err).toBe(0);
      expect(rowsOf(five.out)).toHaveLength(5);
      expect(rowsOf(five.out).every((x) => x.practice_id === b)).toBe(true);
      const fallback = await cli('show', '--project-dir', demo.dir, ...on, '--select', 'stg_encounters', '--tenant', b, '--output', 'json');
      expect(rowsOf(fallback.out)).toHaveLength(10);
    });

    it('text output: a header, a rule, a line per row, and the count on stderr', async () => {
      const r = await cli('show', '--project-dir', demo.dir, ...on, '--select', 'provider_panel', '--tenant', a, '--limit', '2');
      expect(r.code, r.err).toBe(0);
      expect(r.out[0]).toMatch(/^practice_id +\| /);
      expect(r.out[1]).toMatch(/^-+-\+-/);
      const json = await cli('show', '--project-dir', demo.dir, ...on, '--select', 'provider_panel', '--tenant', a, '--limit', '2', '--output', 'json');
      const n = json.out.length;
      expect(n).toBeGreaterThan(0);
      expect(r.out.length).toBe(2 + n);
      expect(r.err).toContain(`${n} row(s) of provider_panel for practice ${a} (--limit 2)`);
    });

    it('a model whose upstream is not built says what to build', async () => {
      const r = await cli('show', '--project-dir', demo.dir, ...on, '--select', 'practice_claims_outstanding', '--tenant', a);
      expect(r.code).toBe(2);
      expect(r.err).toContain('TSF308');
      expect(r.err).toContain(`tsform build --select +practice_claims_outstanding --tenant ${a}`);
    });
  });
}
