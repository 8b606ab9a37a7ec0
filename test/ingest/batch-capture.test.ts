import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import type { OltpFixture, OltpTemplate } from './support/capture-fixture.ts';
import { copyCaptureProject, openOltpAt, rawDiffers, templateOfFirstPractices, withWarehouse } from './support/capture-project.ts';

/**
 * Issue 14, per-node overhead: the OLTP is asked once per table and batch what each practice has
 * after its watermark; a practice with nothing runs no chunk, small backlogs of a batch commit in
 * one transaction. Every guarantee of a practice's own chunks must hold on that path: nothing
 * skipped that a chunk would have read, moved rows leave their old practice, soft deletes reach
 * raw, a transaction still open in the OLTP holds the horizon back.
 */
describe.each(['duckdb', 'postgres'] as const)('batched watermark capture into %s', (target) => {
  let template: OltpTemplate;
  let oltp: OltpFixture;
  let project: ReturnType<typeof copyCaptureProject>;
  let tenants: string[];

  beforeAll(async () => {
    // six practices, batch size 4 in the fixture: two batches
    ({ template, tenants } = await templateOfFirstPractices(6));
  });
  afterAll(async () => {
    await template?.stop();
  });
  beforeEach(async () => {
    oltp = await template.fresh();
    project = copyCaptureProject(tenants);
  });
  afterEach(async () => {
    project?.remove();
    await oltp?.stop();
  });

  const env = () => ({ ...process.env, TSFORM_PG_URL: oltp.url });
  const run = (): Promise<RunResults> => runWorkspace({ projectDir: project.dir, command: 'run', target, env: env(), openOltp: openOltpAt(oltp.url), select: ['source:*'] });
  const notOk = (r: RunResults) => r.results.filter((x) => x.status !== 'success').map((x) => `${x.node}: ${x.status} ${x.code ?? ''} ${x.message ?? ''}`);
  const extract = (r: RunResults, table: string, t: string) => r.results.find((x) => x.node === `source:ehr.${table}@${t}`);
  const warehouse = <T>(fn: (wh: Adapter) => Promise<T>): Promise<T> =>
    target === 'duckdb'
      ? withWarehouse(project.dir, fn)
      : createPostgresAdapter({ url: oltp.url }).then(async (wh) => {
          try {
            return await fn(wh);
          } finally {
            await wh.close();
          }
        });
  const rawEqual = () => warehouse(async (wh) => [...(await rawDiffers(oltp.admin, wh, 'encounters', tenants)), ...(await rawDiffers(oltp.admin, wh, 'procedures', tenants))]);
  /** Chunks committed per (table, practice) and the watermarks: what a chunk writes. */
  const captureState = () =>
    warehouse(async (wh) => ({
      chunks: new Map((await wh.query('SELECT source_table, tenant, chunks FROM tsform_meta.capture_locks')).rows.map((r) => [`${String(r.source_table)}@${String(r.tenant)}`, Number(r.chunks)])),
      watermarks: (await wh.query('SELECT source_table, tenant, updated_at, key_json, rows_captured FROM tsform_meta.capture_watermarks ORDER BY 1, 2')).rows,
    }));
  const pick = (t: string, n: number, offset = 0) =>
    oltp.admin.query(`SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY encounter_id LIMIT ${n} OFFSET ${offset}`, [t]).then((r) => r.rows.map((x) => String(x.encounter_id)));

  it('a capture with nothing to do runs no chunk and writes nothing; changes in several practices of a batch commit together, each counted once', async () => {
    expect(notOk(await run()), 'first capture').toEqual([]);
    expect(await rawEqual()).toEqual([]);
    const before = await captureState();
    const noop = await run();
    expect(notOk(noop)).toEqual([]);
    expect(noop.results.filter((x) => x.node.startsWith('source:') && x.rows !== 0)).toEqual([]);
    expect(await captureState()).toEqual(before);

    const [a, b, c] = tenants;
    const amended = await pick(a!, 3);
    await oltp.admin.query(`UPDATE oltp.encounters SET encounter_class = 'amended', updated_at = now() WHERE practice_id = $1 AND encounter_id = ANY($2::text[])`, [a!, amended]);
    await oltp.admin.query(`DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id = ANY($2::text[])`, [b!, await pick(b!, 2)]);
    await oltp.admin.query(
      `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, description, started_at, updated_at) SELECT $1, 'batch-' || g, 'pat-' || g, 'wellness', 'inserted', now(), now() FROM generate_series(1, 4) g`,
      [c!],
    );
    const changed = await run();
    expect(notOk(changed)).toEqual([]);
    expect(extract(changed, 'encounters', a!)?.rows).toBe(3);
    expect(extract(changed, 'encounters', b!)?.notes).toContain('2 deleted row(s) removed');
    expect(extract(changed, 'encounters', c!)?.rows).toBe(4);
    expect(await rawEqual()).toEqual([]);
    const after = await captureState();
    // one chunk (the batch's transaction) for each practice that changed, none for the others
    for (const t of tenants) {
      const key = `oltp.encounters@${t}`;
      expect(after.chunks.get(key)! - before.chunks.get(key)!, key).toBe([a, b, c].includes(t) ? 1 : 0);
      expect(after.chunks.get(`oltp.procedures@${t}`), t).toBe(before.chunks.get(`oltp.procedures@${t}`));
    }
    const rowsCaptured = (s: typeof before, t: string) => Number(s.watermarks.find((w) => w.source_table === 'oltp.encounters' && w.tenant === t)!.rows_captured);
    expect(rowsCaptured(after, a!) - rowsCaptured(before, a!)).toBe(3);
    expect(rowsCaptured(after, c!) - rowsCaptured(before, c!)).toBe(4);
    // and nothing to do again
    const again = await run();
    expect(again.results.filter((x) => x.node.startsWith('source:') && x.rows !== 0)).toEqual([]);
    expect(await captureState()).toEqual(after);
  });

  it('a row moved to another practice leaves the old one, which has nothing else to capture: in its own batch and in another', async () => {
    expect(notOk(await run()), 'first capture').toEqual([]);
    const [a, b, , , e] = tenants;
    const [sameBatch, otherBatch] = await pick(a!, 2, 5);
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = now() WHERE practice_id = $1 AND encounter_id = $3`, [a!, b!, sameBatch!]);
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = now() WHERE practice_id = $1 AND encounter_id = $3`, [a!, e!, otherBatch!]);
    const r = await run();
    expect(notOk(r)).toEqual([]);
    expect(extract(r, 'encounters', a!)?.rows).toBe(0);
    expect(await rawEqual()).toEqual([]);
    const held = await warehouse(async (wh) => (await wh.query(`SELECT practice_id, encounter_id FROM raw.encounters WHERE encounter_id = ANY($1::VARCHAR[]) ORDER BY 2`, [[sameBatch!, otherBatch!]])).rows);
    expect(held.map((x) => `${String(x.practice_id)}:${String(x.encounter_id)}`)).toEqual([`${b}:${sameBatch}`, `${e}:${otherBatch}`].sort((x, y) => (x.split(':')[1]! < y.split(':')[1]! ? -1 : 1)));
  });

  it('a row committed late by an OLTP transaction that had only read when the batch was checked is captured by the next run', async () => {
    expect(notOk(await run()), 'first capture').toEqual([]);
    const [a, b, c] = tenants;
    // committed before: a and c have a small backlog below the horizon, captured together
    for (const t of [a!, c!]) {
      await oltp.admin.query(`INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, started_at, updated_at) VALUES ($1, 'early', 'pat-e', 'wellness', now(), now())`, [t]);
    }
    const { default: pg } = await import('pg');
    const late = new pg.Client({ connectionString: oltp.url });
    await late.connect();
    try {
      await late.query('BEGIN');
      await late.query('SELECT 1');
      await oltp.admin.query(
        `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, started_at, updated_at) VALUES ($1, 'late-y', 'pat-y', 'wellness', now(), now())`,
        [b!],
      );
      const first = await run();
      expect(notOk(first)).toEqual([]);
      expect([a, b, c].map((t) => extract(first, 'encounters', t!)?.rows)).toEqual([1, 0, 1]);
      // stamped with its transaction's start, before the row above and before that run's check
      // the same practice: a watermark moved past late-y would leave late-x behind it for good
      await late.query(`INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, started_at, updated_at) VALUES ($1, 'late-x', 'pat-x', 'wellness', now(), now())`, [b!]);
      await late.query('COMMIT');
    } finally {
      await late.end();
    }
    expect(notOk(await run())).toEqual([]);
    expect(await rawEqual()).toEqual([]);
    const ids = await warehouse(async (wh) => (await wh.query(`SELECT encounter_id FROM raw.encounters WHERE encounter_id LIKE 'late-%' ORDER BY 1`)).rows.map((x) => String(x.encounter_id)));
    expect(ids).toEqual(['late-x', 'late-y']);
  });
});
