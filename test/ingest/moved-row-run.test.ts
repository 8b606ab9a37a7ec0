import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import type { OltpSource } from '../../src/ingest/oltp-source.ts';
import type { Adapter } from '../../src/adapters/adapter.ts';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { afterEachRead, copyCaptureProject, openOltpAt, startSmallOltp, withFaults, withWarehouse, type SmallOltp } from './support/capture-project.ts';

const notOk = (r: RunResults) => r.results.filter((x) => x.status !== 'success').map((x) => `${x.node}: ${x.code}`);

const AGAIN = 'built again at the end of the run: rows of this practice moved to another practice after it was built';

/**
 * A row that moves from practice A to practice B leaves A's raw slice in B's extract (A's own
 * extract never reads it again). A's models do not wait for B's extract, so those built before
 * it in the same run held the row: the run builds them again at its end. B's reads are made slow
 * here so that A's models surely come first.
 */
describe('a row moved to another practice leaves the old practice’s models in the same run', () => {
  let oltp: SmallOltp;
  let project: ReturnType<typeof copyCaptureProject>;
  let from: string;
  let to: string;

  beforeAll(async () => {
    oltp = await startSmallOltp(['encounters', 'procedures']);
    [from, to] = (await oltp.admin.query(`SELECT practice_id FROM oltp.encounters GROUP BY 1 ORDER BY 1 LIMIT 2`)).rows.map((r) => String(r.practice_id)) as [string, string];
    project = copyCaptureProject([from, to]);
    // each practice its own batch: their extracts are separate nodes, not one group transaction
    const yml = join(project.dir, 'tsform.yml');
    writeFileSync(yml, readFileSync(yml, 'utf8').replace('batch:\n  size: 4', 'batch:\n  size: 1'));
  }, 120_000);
  afterAll(async () => {
    project?.remove();
    await oltp?.stop();
  });

  it('the old practice’s tables and counts are built again after the new practice’s extract removed its copy', async () => {
    const first = await runWorkspace({ projectDir: project.dir, command: 'run', openOltp: openOltpAt(oltp.server.url) });
    expect(first.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);
    const moved = String(
      (await oltp.admin.query(`SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY encounter_id LIMIT 1`, [from])).rows[0]!.encounter_id,
    );
    // the move commits during the run, after the run's sweep for moved rows read the table: only
    // the new practice's extract can find it then
    const move = () => oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id = $3`, [from, to, moved]);
    const slowTo = afterSweep(withFaults(await PgOltpSource.open(oltp.server.url), { [to]: 'slow' }), 'encounters', move);
    const run = await runWorkspace({ projectDir: project.dir, command: 'run', openOltp: async () => slowTo });
    expect(run.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);
    // the old practice's staging and counts were built before the move reached raw, then again
    for (const node of [`stg_encounters@${from}`, `practice_encounter_counts@${from}`]) {
      expect(run.results.filter((r) => r.node === node && r.kind === 'build').map((r) => r.notes ?? []), node).toEqual([expect.arrayContaining([AGAIN])]);
    }
    // the receiving practice's nodes ran after its own extract: nothing to build again
    expect(run.results.filter((r) => r.tenant === to && (r.notes ?? []).includes(AGAIN))).toEqual([]);

    const oltpCounts = new Map(
      (await oltp.admin.query(`SELECT practice_id, count(*) AS n FROM oltp.encounters WHERE deleted_at IS NULL AND practice_id = ANY($1::text[]) GROUP BY 1`, [[from, to]])).rows.map((r) => [
        String(r.practice_id),
        Number(r.n),
      ]),
    );
    await withWarehouse(project.dir, async (wh) => {
      for (const rel of ['raw.encounters', 'marts.stg_encounters']) {
        const holders = (await wh.query(`SELECT practice_id FROM ${rel} WHERE encounter_id = $1`, [moved])).rows.map((r) => String(r.practice_id));
        expect(holders, rel).toEqual([to]);
      }
      const counts = (await wh.query(`SELECT practice_id, encounters FROM marts.practice_encounter_counts WHERE practice_id = ANY($1::VARCHAR[])`, [[from, to]])).rows;
      expect(counts.length).toBe(2);
      for (const c of counts) expect(Number(c.encounters), String(c.practice_id)).toBe(oltpCounts.get(String(c.practice_id)));
    });
  }, 300_000);

  it('a move between two practices captured in one batch transaction builds nothing again', async () => {
    // both practices in one batch: their small backlogs are captured together (group-capture.ts),
    // the move removed in the transaction both extracts wait for, before either's models
    const yml = join(project.dir, 'tsform.yml');
    writeFileSync(yml, readFileSync(yml, 'utf8').replace('batch:\n  size: 1', 'batch:\n  size: 4'));
    const moved = String(
      (await oltp.admin.query(`SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY encounter_id DESC LIMIT 1`, [from])).rows[0]!.encounter_id,
    );
    // after the run's sweep read the table, as above: the group's transaction must find it
    const move = async () => {
      await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id = $3`, [from, to, moved]);
      await oltp.admin.query(
        `UPDATE oltp.encounters SET updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY encounter_id LIMIT 1)`,
        [from],
      );
    };
    const source = afterSweep(await PgOltpSource.open(oltp.server.url), 'encounters', move);
    const run = await runWorkspace({ projectDir: project.dir, command: 'run', openOltp: async () => source });
    expect(run.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);
    expect(run.results.filter((r) => (r.notes ?? []).includes(AGAIN)).map((r) => r.node)).toEqual([]);
    await withWarehouse(project.dir, async (wh) => {
      for (const rel of ['raw.encounters', 'marts.stg_encounters']) {
        const holders = (await wh.query(`SELECT practice_id FROM ${rel} WHERE encounter_id = $1`, [moved])).rows.map((r) => String(r.practice_id));
        expect(holders, rel).toEqual([to]);
      }
    });
  }, 300_000);

  it('a run of the old practice alone, before the new practice is captured, builds its models without the moved row', async () => {
    // per-practice runs at each practice's own hour: A's run comes first, B's extract has not run
    expect(notOk(await runWorkspace({ projectDir: project.dir, command: 'run', openOltp: openOltpAt(oltp.server.url) }))).toEqual([]);
    const moved = String(
      (await oltp.admin.query(`SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY encounter_id LIMIT 1 OFFSET 1`, [from])).rows[0]!.encounter_id,
    );
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id = $3`, [from, to, moved]);
    const alone = await runWorkspace({ projectDir: project.dir, command: 'run', tenants: [from], openOltp: openOltpAt(oltp.server.url) });
    expect(notOk(alone)).toEqual([]);
    expect(new Set(alone.results.filter((r) => r.tenant !== null).map((r) => r.tenant))).toEqual(new Set([from]));
    // a move between captured practices is routine: no notice
    expect((alone.notices ?? []).filter((n) => n.includes('moved'))).toEqual([]);
    const live = async (p: string) => Number((await oltp.admin.query(`SELECT count(*) AS n FROM oltp.encounters WHERE deleted_at IS NULL AND practice_id = $1`, [p])).rows[0]!.n);
    const holders = (wh: Adapter, rel: string) => wh.query(`SELECT practice_id FROM ${rel} WHERE encounter_id = $1 ORDER BY 1`, [moved]).then((r) => r.rows.map((x) => String(x.practice_id)));
    await withWarehouse(project.dir, async (wh) => {
      for (const rel of ['raw.encounters', 'marts.stg_encounters']) expect(await holders(wh, rel), rel).toEqual([]);
      const counts = await wh.query(`SELECT encounters FROM marts.practice_encounter_counts WHERE practice_id = $1`, [from]);
      expect(Number(counts.rows[0]!.encounters)).toBe(await live(from));
    });
    // the new practice's own run brings it there
    expect(notOk(await runWorkspace({ projectDir: project.dir, command: 'run', tenants: [to], openOltp: openOltpAt(oltp.server.url) }))).toEqual([]);
    await withWarehouse(project.dir, async (wh) => {
      for (const rel of ['raw.encounters', 'marts.stg_encounters']) expect(await holders(wh, rel), rel).toEqual([to]);
    });
  }, 300_000);

  it('a row moved to a practice not in tenants.yml leaves the old practice’s raw and models in the next run, with a notice', async () => {
    // the row was captured at its old practice first
    const before = await runWorkspace({ projectDir: project.dir, command: 'run', openOltp: openOltpAt(oltp.server.url) });
    expect(before.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);
    const away = String((await oltp.admin.query(`SELECT practice_id FROM oltp.encounters WHERE practice_id <> ALL($1::text[]) GROUP BY 1 ORDER BY 1 LIMIT 1`, [[from, to]])).rows[0]!.practice_id);
    const moved = String(
      (await oltp.admin.query(`SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY encounter_id LIMIT 1 OFFSET 2`, [from])).rows[0]!.encounter_id,
    );
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id = $3`, [from, away, moved]);
    const run = await runWorkspace({ projectDir: project.dir, command: 'run', openOltp: openOltpAt(oltp.server.url) });
    expect(run.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);
    expect((run.notices ?? []).filter((n) => n.includes('not in tenants.yml: removed'))).toEqual([`source:ehr.encounters: 1 row(s) had moved to a practice that is not in tenants.yml: removed from raw at ${from}`]);
    const live = Number((await oltp.admin.query(`SELECT count(*) AS n FROM oltp.encounters WHERE deleted_at IS NULL AND practice_id = $1`, [from])).rows[0]!.n);
    await withWarehouse(project.dir, async (wh) => {
      for (const rel of ['raw.encounters', 'marts.stg_encounters']) {
        expect((await wh.query(`SELECT count(*) AS n FROM ${rel} WHERE encounter_id = $1`, [moved])).rows[0]!.n, rel).toBe(0);
      }
      const counts = await wh.query(`SELECT encounters FROM marts.practice_encounter_counts WHERE practice_id = $1`, [from]);
      expect(Number(counts.rows[0]!.encounters)).toBe(live);
    });
  }, 300_000);
});

/** Runs `action` once, right after the sweep for moved rows of `table` read its first page (move-sweep.ts). */
function afterSweep(inner: OltpSource, table: string, action: () => Promise<unknown>): OltpSource {
  let done = false;
  return afterEachRead(inner, async (_, sql) => {
    if (done || !sql.includes('AS __tsf_u') || !sql.includes(`."${table}"`)) return;
    done = true;
    await action();
  });
}
