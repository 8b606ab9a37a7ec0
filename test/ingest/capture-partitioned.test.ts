import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlParam } from '../../src/adapters/adapter.ts';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import { copyCaptureProject, openOltpAt, rawDiffers, startSmallOltp, type SmallOltp } from './support/capture-project.ts';

/**
 * `partition_by_practice` reaches the raw tables capture creates (OLTP watermark capture and CSV
 * landing folders), as it reaches models' tables: a listed practice's rows in its own LIST
 * partition, everyone else's in HASH partitions, row-level security forced on every partition,
 * and capture (moved rows and deletes included) as exact as on a plain table.
 */
describe('captured raw tables partitioned by practice (PostgreSQL warehouse)', () => {
  let oltp: SmallOltp;
  let project: ReturnType<typeof copyCaptureProject>;
  let tenants: string[];
  const sql = async (text: string, values: SqlParam[] = []) => (await oltp.admin.query(text, values)).rows;

  beforeAll(async () => {
    oltp = await startSmallOltp(['encounters', 'procedures']);
    tenants = (await sql(`SELECT DISTINCT practice_id FROM oltp.encounters ORDER BY 1 LIMIT 4`)).map((r) => String(r.practice_id));
    project = copyCaptureProject(tenants);
    const yml = join(project.dir, 'tsform.yml');
    writeFileSync(yml, readFileSync(yml, 'utf8').replace('    url_env: TSFORM_PG_URL\n', `    url_env: TSFORM_PG_URL\n    partition_by_practice:\n      list: [${tenants[0]}]\n      hash_partitions: 2\n`));
    mkdirSync(join(project.dir, 'policies'), { recursive: true });
    writeFileSync(join(project.dir, 'policies/policies.yml'), 'protect:\n  schemas: [raw, marts]\ngrants:\n  practice_roles: [marts]\n');
    const sources = join(project.dir, 'models/sources.yml');
    writeFileSync(
      sources,
      `${readFileSync(sources, 'utf8')}  - name: clinic
    schema: raw
    loader:
      csv_landing: { path: "landing/{table}", layout: practice_column }
    tables:
      - name: visits
        key: [visit_id]
`,
    );
    mkdirSync(join(project.dir, 'landing/visits'), { recursive: true });
    writeFileSync(join(project.dir, 'landing/visits/2024-01.csv'), `practice_id,visit_id\n${tenants[0]},v1\n${tenants[1]},v2\n${tenants[2]},v3\n${tenants[2]},v4\n`);
    process.env.TSFORM_PG_URL = oltp.server.url;
  }, 600_000);
  afterAll(async () => {
    delete process.env.TSFORM_PG_URL;
    project?.remove();
    await oltp?.stop();
  });

  const run = (): Promise<RunResults> => runWorkspace({ projectDir: project.dir, command: 'run', target: 'postgres', openOltp: openOltpAt(oltp.server.url) });
  const exact = async () => [...(await rawDiffers(oltp.admin, oltp.admin, 'encounters', tenants)), ...(await rawDiffers(oltp.admin, oltp.admin, 'procedures', tenants))];
  /** Rows of `table` per leaf partition, and practices found in a partition not theirs. */
  const layout = async (table: string) => {
    const leaves = await sql(`SELECT relid::regclass::text AS rel FROM pg_partition_tree($1::regclass) WHERE isleaf ORDER BY 1`, [`raw.${table}`]);
    const listed = await sql(`SELECT count(*)::int AS n, count(*) FILTER (WHERE practice_id <> $1)::int AS foreign FROM raw.${quoteIdent(`${table}__p1`)}`, [tenants[0]!]);
    const restHasListed = await sql(`SELECT count(*)::int AS n FROM raw.${quoteIdent(`${table}__rest`)} WHERE practice_id = $1`, [tenants[0]!]);
    return { leaves: leaves.length, listed: listed[0], restHasListed: restHasListed[0]!.n };
  };

  it('creates captured and landing raw tables partitioned, protected on every partition, and captures exactly', async () => {
    const first = await run();
    expect(first.results.filter((r) => r.status !== 'success').map((r) => [r.node, r.code])).toEqual([]);
    const parents = await sql(
      `SELECT c.relname::text AS t FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'raw' AND NOT c.relispartition ORDER BY 1`,
    );
    expect(parents.map((r) => r.t)).toEqual(['encounters', 'procedures', 'visits']);
    for (const table of ['encounters', 'procedures', 'visits']) {
      const l = await layout(table);
      // one LIST partition, the DEFAULT's two HASH partitions
      expect(l.leaves, table).toBe(3);
      expect(l.listed!.n, table).toBeGreaterThan(0);
      expect(l.listed!.foreign, table).toBe(0);
      expect(l.restHasListed, table).toBe(0);
    }
    // the parent carries the policies; every partition forces row-level security (read directly, it shows nothing)
    const unprotected = await sql(
      `SELECT c.relname::text AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'raw' AND c.relkind IN ('r', 'p') AND NOT (c.relrowsecurity AND c.relforcerowsecurity) ORDER BY 1`,
    );
    expect(unprotected).toEqual([]);
    const policies = await sql(`SELECT DISTINCT c.relname::text AS t FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'raw' ORDER BY 1`);
    expect(policies.map((r) => r.t)).toEqual(['encounters', 'procedures', 'visits']);
    // capture's lookup indexes exist on the parent, so on every partition
    const indexesOf = async (t: string) => (await sql(`SELECT indexname::text AS i FROM pg_indexes WHERE schemaname = 'raw' AND tablename = $1 ORDER BY 1`, [t])).map((r) => String(r.i));
    const onParent = await indexesOf('encounters');
    expect(onParent).toEqual(expect.arrayContaining(['encounters__capture_key_idx', 'encounters__moved_key_idx']));
    for (const leaf of ['encounters__p1', 'encounters__h0', 'encounters__h1']) expect(await indexesOf(leaf), leaf).toHaveLength(onParent.length);
    expect(await exact()).toEqual([]);
    expect((await sql(`SELECT practice_id, visit_id FROM raw.visits ORDER BY 2`)).map((r) => `${r.practice_id}|${r.visit_id}`)).toEqual([
      `${tenants[0]}|v1`,
      `${tenants[1]}|v2`,
      `${tenants[2]}|v3`,
      `${tenants[2]}|v4`,
    ]);
  });

  it('moves a row between partitions when its practice changes, and takes deletes, as on a plain table', async () => {
    const [listed, a, b] = tenants as [string, string, string];
    const first = async (practice: string) => String((await sql(`SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY 1 LIMIT 1`, [practice]))[0]!.encounter_id);
    const toListed = await first(a);
    const toHash = await first(listed);
    const move = (id: string, from: string, to: string) => sql(`UPDATE oltp.encounters SET practice_id = $3, updated_at = now() WHERE practice_id = $2 AND encounter_id = $1`, [id, from, to]);
    await move(toListed, a, listed);
    await move(toHash, listed, b);
    await sql(`UPDATE oltp.procedures SET deleted_at = now(), updated_at = now() WHERE procedure_id IN (SELECT procedure_id FROM oltp.procedures WHERE practice_id = $1 ORDER BY 1 LIMIT 2)`, [listed]);
    const second = await run();
    expect(second.results.filter((r) => r.status !== 'success').map((r) => [r.node, r.code])).toEqual([]);
    expect(await exact()).toEqual([]);
    const where = async (id: string) => (await sql(`SELECT tableoid::regclass::text AS part, practice_id FROM raw.encounters WHERE encounter_id = $1`, [id])).map((r) => `${r.part}|${r.practice_id}`);
    expect(await where(toListed)).toEqual([`raw.encounters__p1|${listed}`]);
    const moved = await where(toHash);
    expect(moved).toHaveLength(1);
    expect(moved[0]).toMatch(new RegExp(`^raw\\.encounters__h[01]\\|${b}$`));
    const l = await layout('encounters');
    expect(l.listed!.foreign).toBe(0);
    expect(l.restHasListed).toBe(0);
  });
});
