import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import type { NodeResult, RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace, type RunRequest } from '../../src/cli/api.ts';
import { runCli as runCliArgs } from '../../src/cli/program.ts';
import { REPO_ROOT } from '../support/demo-project.ts';
import { startOltpTemplate, type OltpFixture, type OltpTemplate } from './support/capture-fixture.ts';
import { copyCaptureProject, openOltpAt, rawDiffers, withFaults, withWarehouse } from './support/capture-project.ts';

/**
 * Capture nodes as ordinary DAG nodes (issue 5): `tsform run` captures each practice from the
 * shared PostgreSQL OLTP into raw.* of the DuckDB warehouse, then transforms it.
 */
describe('capture in a run: PostgreSQL OLTP → DuckDB warehouse', () => {
  // Each case starts from the same OLTP (a clone of one template) and a fresh copy of the
  // project with an empty warehouse: it passes alone and in any order.
  let template: OltpTemplate;
  let oltp: OltpFixture;
  let project: ReturnType<typeof copyCaptureProject>;
  let baseTenants: string[];
  let tenants: string[];
  let newcomer: string;
  const stray = 'p_not_a_tenant';

  beforeAll(async () => {
    template = await startOltpTemplate({
      tables: ['encounters', 'procedures'],
      prepare: async (admin) => {
        const { rows } = await admin.query(`SELECT practice_id, count(*) AS n FROM oltp.encounters GROUP BY 1 ORDER BY 1`);
        const ids = rows.map((r) => String(r.practice_id));
        const largest = String([...rows].sort((a, b) => Number(b.n) - Number(a.n))[0]!.practice_id);
        const keep = [...new Set([...ids.slice(0, 6), largest])].sort();
        newcomer = keep[5]!;
        baseTenants = keep.filter((t) => t !== newcomer);
        // Only these practices exist in the OLTP, so counts of unknown practices are exact.
        await admin.transaction(async (s) => {
          await s.query(`SELECT set_config('tsform.hard_delete', 'on', true)`);
          for (const t of ['encounters', 'procedures']) await s.query(`DELETE FROM oltp.${t} WHERE NOT (practice_id = ANY($1::text[]))`, [keep]);
        });
      },
    });
  });
  afterAll(async () => {
    await template?.stop();
  });
  beforeEach(async () => {
    oltp = await template.fresh();
    tenants = [...baseTenants];
    project = copyCaptureProject(tenants);
  });
  afterEach(async () => {
    project?.remove();
    await oltp?.stop();
  });

  const runCli = (args: string[], out: (line: string) => void) => runCliArgs(['node', 'tsform', ...args], out);
  const run = (extra: Partial<RunRequest> = {}): Promise<RunResults> =>
    runWorkspace({ projectDir: project.dir, command: 'run', openOltp: openOltpAt(oltp.url), ...extra });
  const notOk = (r: RunResults) => r.results.filter((x) => x.status !== 'success').map((x) => `${x.node}: ${x.status} ${x.code ?? ''} ${x.message ?? ''}`);
  const byNode = (r: RunResults) => new Map<string, NodeResult>(r.results.map((x) => [x.node, x]));
  const oltpCounts = async (table: string) => {
    const { rows } = await oltp.admin.query(`SELECT practice_id, count(*) AS n FROM oltp.${table} WHERE deleted_at IS NULL GROUP BY 1`);
    return new Map(rows.map((r) => [String(r.practice_id), Number(r.n)]));
  };
  const martCounts = (dir: string) =>
    withWarehouse(dir, async (wh) => new Map((await wh.query('SELECT practice_id, encounters FROM marts.practice_encounter_counts')).rows.map((r) => [String(r.practice_id), Number(r.encounters)])));
  const allEqual = (ids: readonly string[]) =>
    withWarehouse(project.dir, async (wh) => [...(await rawDiffers(oltp.admin, wh, 'encounters', ids)), ...(await rawDiffers(oltp.admin, wh, 'procedures', ids))]);

  it('captures every practice and then transforms it; a second run captures only the changes (updates, soft and hard deletes, inserts)', async () => {
    const first = await run();
    expect(notOk(first)).toEqual([]);
    const nodes = byNode(first);
    const expected = await oltpCounts('encounters');
    for (const t of tenants) expect(nodes.get(`source:ehr.encounters@${t}`)?.rows).toBe(expected.get(t));
    expect(await allEqual(tenants)).toEqual([]);
    expect(await martCounts(project.dir)).toEqual(new Map(tenants.map((t) => [t, expected.get(t)])));

    const [t0, t1, t2, t3] = tenants;
    await oltp.admin.query(`UPDATE oltp.encounters SET encounter_class = 'amended', updated_at = now() WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY 1 LIMIT 3)`, [t0!]);
    await oltp.admin.query(`UPDATE oltp.encounters SET deleted_at = now(), updated_at = now() WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY 1 LIMIT 2)`, [t1!]);
    await oltp.admin.query(`DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY 1 LIMIT 1)`, [t2!]);
    await insertEncounters(t3!, 4, 'a');
    const second = await run();
    expect(notOk(second)).toEqual([]);
    const n2 = byNode(second);
    expect(n2.get(`source:ehr.encounters@${t0}`)?.rows).toBe(3);
    expect(n2.get(`source:ehr.encounters@${t1}`)?.notes).toContain('2 deleted row(s) removed');
    expect(n2.get(`source:ehr.encounters@${t2}`)?.notes).toContain('1 deleted row(s) removed');
    expect(n2.get(`source:ehr.encounters@${t3}`)?.rows).toBe(4);
    expect(n2.get(`source:ehr.encounters@${tenants[4]}`)?.rows).toBe(0);
    expect(await allEqual(tenants)).toEqual([]);
    const after = await oltpCounts('encounters');
    expect(await martCounts(project.dir)).toEqual(new Map(tenants.map((t) => [t, after.get(t)])));
  });

  it('run --tenant X captures and transforms X only', async () => {
    expect(notOk(await run()), 'the first capture').toEqual([]);
    const [t0, t1] = tenants;
    await insertEncounters(t0!, 2, 'b');
    await insertEncounters(t1!, 2, 'b');
    const r = await run({ tenants: [t0!] });
    expect(notOk(r)).toEqual([]);
    expect(new Set(r.results.filter((x) => x.tenant !== null).map((x) => x.tenant))).toEqual(new Set([t0]));
    expect(byNode(r).get(`source:ehr.encounters@${t0}`)?.rows).toBe(2);
    expect(await allEqual([t0!])).toEqual([]);
    expect(await allEqual([t1!])).toHaveLength(1);
    await run();
    expect(await allEqual(tenants)).toEqual([]);
  });

  it('an OLTP statement timeout or a lost connection fails only that practice, by name, and skips only its downstream', async () => {
    expect(notOk(await run()), 'the first capture').toEqual([]);
    const [, slow, cut] = tenants;
    for (const t of tenants) await insertEncounters(t, 1, 'c');
    const faulty = withFaults(await PgOltpSource.open(oltp.url), { [slow!]: 'timeout', [cut!]: 'disconnect' });
    const r = await run({ openOltp: async () => faulty });
    const nodes = byNode(r);
    const timedOut = nodes.get(`source:ehr.encounters@${slow}`)!;
    expect(timedOut).toMatchObject({ status: 'error', code: 'TSF411' });
    expect(timedOut.message).toContain(slow);
    expect(timedOut.message).toMatch(/statement timeout/);
    const lost = nodes.get(`source:ehr.encounters@${cut}`)!;
    expect(lost).toMatchObject({ status: 'error', code: 'TSF409' });
    expect(lost.message).toContain(cut);
    for (const t of [slow, cut]) {
      expect(nodes.get(`stg_encounters@${t}`)).toMatchObject({ status: 'skipped', code: 'TSF405' });
      expect(nodes.get(`practice_encounter_counts@${t}`)).toMatchObject({ status: 'skipped' });
      expect(r.tenants[t!]!.status).toBe('error');
    }
    const others = tenants.filter((t) => t !== slow && t !== cut);
    for (const t of others) expect(r.tenants[t]!.status).toBe('success');
    expect(await allEqual(others)).toEqual([]);
    expect(await allEqual([slow!, cut!])).toHaveLength(2);
    // Without the faults the next run catches both up, and nothing else moves.
    const again = await run();
    expect(notOk(again)).toEqual([]);
    expect(await allEqual(tenants)).toEqual([]);
    expect(byNode(again).get(`source:ehr.encounters@${others[0]}`)?.rows).toBe(0);
  });

  it('a backlog gives its slot back after its time slice: other practices run between its slices, and it ends with one result', async () => {
    const sources = join(project.dir, 'models/sources.yml');
    const original = readFileSync(sources, 'utf8');
    writeFileSync(sources, original.replace('chunk_rows: 700', 'chunk_rows: 500\n        slice_seconds: 0.001'));
    try {
      const big = tenants.at(-1)!;
      await insertEncounters(big, 3_000, 'slices');
      const captured = await withWarehouse(project.dir, async (wh) => Number((await wh.query('SELECT count(*) AS n FROM raw.encounters WHERE practice_id = $1', [big]).catch(() => ({ rows: [{ n: 0 }] }))).rows[0]!.n));
      const backlog = (await oltpCounts('encounters')).get(big)! - captured;
      expect(backlog).toBeGreaterThanOrEqual(3_000);
      const ends: string[] = [];
      const r = await run({ onTaskEnd: (step, results) => ends.push(`${step.id} ${results.map((x) => x.tenant).join(',')}`) });
      expect(notOk(r)).toEqual([]);
      // one result for the practice, with every row of its slices
      const bigCapture = r.results.filter((x) => x.node === `source:ehr.encounters@${big}`);
      expect(bigCapture.map((x) => x.rows)).toEqual([backlog]);
      expect(await allEqual(tenants)).toEqual([]);
      // 3,000 rows in chunks of 500: at least 5 slices handed back to the scheduler before the
      // last one (a yield ends with no result)
      const slices = ends.map((e, i) => [e, i] as const).filter(([e]) => e === 'source:ehr.encounters ');
      expect(slices.length).toBeGreaterThanOrEqual(5);
      const lastSlice = slices.at(-1)![1];
      const between = ends.slice(slices[0]![1] + 1, lastSlice).filter((e) => !e.endsWith(' '));
      expect(between.length, ends.join('\n')).toBeGreaterThan(0);
    } finally {
      writeFileSync(sources, original);
    }
  });

  it('rows of a practice not in tenants.yml are counted once in the run notices, never loaded', async () => {
    await insertEncounters(stray, 9, 'd');
    const waiting = (await oltpCounts('encounters')).get(newcomer)!;
    const r = await run();
    expect(notOk(r)).toEqual([]);
    const lines = (r.notices ?? []).filter((n) => n.startsWith('source:ehr.encounters:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${waiting + 9} row(s) in oltp.encounters carry a practice_id that is not in tenants.yml`);
    expect(lines[0]).toContain(`"${stray}" (9)`);
    const loaded = await withWarehouse(project.dir, async (wh) => (await wh.query(`SELECT count(*) AS n FROM raw.encounters WHERE NOT (practice_id = ANY($1::VARCHAR[]))`, [tenants])).rows[0]!.n);
    expect(Number(loaded)).toBe(0);
  });

  it('onboarding: a practice added to tenants.yml is captured from zero on the next run', async () => {
    expect(notOk(await run()), 'the first capture').toEqual([]);
    project.setTenants([...tenants, newcomer]);
    const announced: string[][] = [];
    const r = await run({ onPlan: (plan) => announced.push(...plan.batches) });
    expect(notOk(r)).toEqual([]);
    // The plan the run announces is the one it executes: the newcomer already alone in its batch.
    expect(announced).toContainEqual([newcomer]);
    expect(byNode(r).get(`source:ehr.encounters@${newcomer}`)?.rows).toBe((await oltpCounts('encounters')).get(newcomer));
    expect(await allEqual([...tenants, newcomer])).toEqual([]);
    // its whole history is captured alone: its batch-mates' downstream does not wait for it
    expect(r.notices ?? []).toContain(`onboarding 1 practice(s), each captured alone in its own batch: ${newcomer}`);
    expect(byNode(r).get(`stg_encounters@${newcomer}`)?.batch_size).toBeUndefined();
    expect(r.results.filter((x) => x.model === 'stg_encounters' && x.batch_size !== undefined).length).toBeGreaterThan(0);
    expect((r.notices ?? []).filter((n) => !n.startsWith('onboarding')).join('\n')).not.toContain(newcomer);
    tenants = [...tenants, newcomer].sort();
    // established from now on: batched again
    expect((await run()).notices ?? []).not.toContainEqual(expect.stringContaining('onboarding'));
  });

  it('offboarding: a removed practice is reported with the purge command; purge deletes its rows and nothing else', async () => {
    expect(notOk(await run()), 'the first capture').toEqual([]);
    const gone = tenants[4]!;
    const stay = tenants.filter((t) => t !== gone);
    project.setTenants(stay);
    const r = await run();
    expect(notOk(r)).toEqual([]);
    expect(r.results.some((x) => x.tenant === gone)).toBe(false);
    expect(r.notices).toContainEqual(expect.stringContaining(`practice ${gone} is no longer in tenants.yml`));
    expect(r.notices).toContainEqual(expect.stringContaining(`tsform purge --tenant ${gone} --yes`));

    const countsOf = () =>
      withWarehouse(project.dir, async (wh) => {
        const out: Record<string, string> = {};
        for (const rel of ['raw.encounters', 'raw.procedures', 'marts.stg_encounters', 'marts.practice_encounter_counts', 'tsform_meta.capture_watermarks', 'tsform_meta.node_runs']) {
          const col = rel.startsWith('tsform_meta') ? 'tenant' : 'practice_id';
          const { rows } = await wh.query(`SELECT ${col} AS t, count(*) AS n FROM ${rel} GROUP BY 1 ORDER BY 1`);
          out[rel] = rows.map((x) => `${x.t}:${Number(x.n)}`).join(' ');
        }
        return out;
      });
    const before = await countsOf();
    const lines: string[] = [];
    expect(await runCli(['purge', '--project-dir', project.dir, '--tenant', gone], (l) => lines.push(l))).toBe(0);
    expect(lines.at(-1)).toMatch(/^dry run: \d+ row\(s\) would be deleted/);
    expect(await countsOf()).toEqual(before);
    expect(await runCli(['purge', '--project-dir', project.dir, '--tenant', stay[0]!, '--yes'], () => undefined)).toBe(2);

    lines.length = 0;
    expect(await runCli(['purge', '--project-dir', project.dir, '--tenant', gone, '--yes'], (l) => lines.push(l))).toBe(0);
    expect(lines).toContainEqual(expect.stringMatching(/^raw\.encounters\t\d+$/));
    const after = await countsOf();
    for (const [rel, text] of Object.entries(before)) {
      expect(after[rel], rel).toBe(text.split(' ').filter((x) => !x.startsWith(`${gone}:`)).join(' '));
      expect(text, rel).toContain(`${gone}:`);
    }
    // Its OLTP rows are now rows of a practice not in tenants.yml: counted, not loaded.
    const next = (await run()).notices ?? [];
    expect(next.join('\n')).not.toContain('no longer in tenants.yml');
    expect(next.join('\n')).toContain(`"${gone}"`);
    tenants = stay;
  });

  it('tsform backfill re-captures a practice in chunks with progress, resumes after an interruption, and leaves raw equal to the OLTP', async () => {
    expect(notOk(await run()), 'the first capture').toEqual([]);
    const counts = await oltpCounts('encounters');
    const t0 = [...tenants].sort((a, b) => counts.get(b)! - counts.get(a)!)[0]!;
    await withWarehouse(project.dir, async (wh) => {
      await wh.query(`UPDATE raw.encounters SET encounter_class = 'damaged' WHERE practice_id = $1`, [t0]);
      await wh.query(`DELETE FROM raw.encounters WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM raw.encounters WHERE practice_id = $1 ORDER BY 1 LIMIT 10)`, [t0]);
    });
    expect(await allEqual([t0])).toHaveLength(1);
    process.env.TSFORM_OLTP_URL = oltp.url;
    try {
      const args = ['backfill', '--project-dir', project.dir, '--tenant', t0, '--select', 'source:ehr.encounters', '--from', '1900-01-01', '--to', '2100-01-01', '--chunk-rows', '20'];
      const first: string[] = [];
      expect(await runCli([...args, '--max-chunks', '2'], (l) => first.push(l))).toBe(0);
      expect(first).toEqual([
        expect.stringMatching(new RegExp(`^backfill source:ehr.encounters@${t0}: chunk 1, 20 row\\(s\\) so far`)),
        expect.stringMatching(/chunk 2, 40 row\(s\) so far/),
        expect.stringMatching(/stopped after 2 chunk\(s\), 40 row\(s\); run the same command again to resume$/),
      ]);
      const second: string[] = [];
      expect(await runCli(args, (l) => second.push(l))).toBe(0);
      expect(second[0]).toMatch(/chunk 1, 20 row\(s\)/);
      expect(second.at(-1)).toMatch(/: complete, \d+ row\(s\)/);
      // The resumed run started after the first one's 40 rows: together they read the practice once.
      const total = Number(/complete, (\d+) row/.exec(second.at(-1)!)![1]) + 40;
      expect(total).toBe(counts.get(t0));
      expect(await allEqual([t0])).toEqual([]);
      expect(await runCli([...args.slice(0, 5), '--from', 'yesterday'], () => undefined)).toBe(2);
    } finally {
      delete process.env.TSFORM_OLTP_URL;
    }
  });

  it('tsform oltp load-demo loads the demo data into shared OLTP tables (practice_id, updated_at, soft deletes)', async () => {
    process.env.TSFORM_OLTP_URL = oltp.url;
    try {
      const lines: string[] = [];
      const args = ['oltp', 'load-demo', '--project-dir', project.dir, '--data-dir', join(REPO_ROOT, 'data/ehr'), '--schema', 'oltp_demo'];
      expect(await runCli(args, (l) => lines.push(l))).toBe(0);
      expect(lines).toEqual([expect.stringMatching(/^oltp_demo\.encounters\t\d+ rows$/), expect.stringMatching(/^oltp_demo\.procedures\t\d+ rows$/)]);
      const cols = await oltp.admin.query(`SELECT column_name FROM information_schema.columns WHERE table_schema = 'oltp_demo' AND table_name = 'encounters'`);
      expect(cols.rows.map((r) => r.column_name)).toEqual(expect.arrayContaining(['practice_id', 'encounter_id', 'updated_at', 'deleted_at']));
    } finally {
      delete process.env.TSFORM_OLTP_URL;
    }
  });

  async function insertEncounters(tenant: string, n: number, tag: string): Promise<void> {
    await oltp.admin.query(
      `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, description, started_at, updated_at)
       SELECT $1, 'new-${tag}-' || g, 'pat-' || g, 'wellness', 'inserted', now(), now() FROM generate_series(1, ${n}) g`,
      [tenant],
    );
  }
});
