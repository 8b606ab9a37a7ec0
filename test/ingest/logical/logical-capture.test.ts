import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDuckdb, tempDuckdbPath, type OltpFixture, type OltpTemplate } from '../support/capture-fixture.ts';
import { templateOfFirstPractices } from '../support/capture-project.ts';
import type { DuckDBAdapter } from '../../../src/adapters/duckdb/duckdb-adapter.ts';
import { allDiffers, captureOnce, logicalCaptureOf } from './support/logical-fixture.ts';

/**
 * Log-based capture (issue 14) against a throwaway PostgreSQL with wal_level=logical: what
 * watermark capture cannot see, each checked as raw == the OLTP per practice (checksums only).
 */
describe('logical capture: the stream into per-practice queues, applied per practice', () => {
  let template: OltpTemplate;
  let tenants: string[];
  let oltp: OltpFixture;
  let file: { path: string; remove(): void };
  let wh: DuckDBAdapter;
  let project = 0;

  beforeAll(async () => {
    ({ template, tenants } = await templateOfFirstPractices(4, ['encounters', 'procedures'], { logical: {} }));
  });
  afterAll(async () => {
    await template?.stop();
  });
  beforeEach(async () => {
    oltp = await template.fresh();
    file = tempDuckdbPath();
    wh = await openDuckdb(file.path);
  });
  afterEach(async () => {
    await wh?.close();
    file?.remove();
    // the slot lives in the cluster, not the database: drop it with the case
    await oltp.admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`);
    await oltp?.stop();
  });

  const hardDelete = (sql: string, params: string[]) =>
    oltp.admin.transaction(async (s) => {
      await s.query(`SELECT set_config('tsform.hard_delete', 'on', true)`);
      await s.query(sql, params);
    });

  it('initial copy, then hard deletes, updates without updated_at, moves between practices, microseconds, unknown practices', async () => {
    const lc = logicalCaptureOf(wh, oltp.source, `p${project++}`, tenants);
    expect(await captureOnce(lc, tenants)).toEqual([]);
    expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);

    const [a, b, c] = tenants as [string, string, string];
    const enc = async (p: string, n: number) =>
      (await oltp.admin.query(`SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY encounter_id LIMIT ${n}`, [p])).rows.map((r) => String(r.encounter_id));
    const [gone, moved, quiet, stamped] = await enc(a, 4) as [string, string, string, string];
    await hardDelete(`DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id = $2`, [a, gone]);
    // soft delete through the demo trigger
    await oltp.admin.query(`DELETE FROM oltp.procedures WHERE practice_id = $1 AND procedure_id IN (SELECT procedure_id FROM oltp.procedures WHERE practice_id = $1 LIMIT 3)`, [b]);
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2 WHERE practice_id = $1 AND encounter_id = $3`, [a, c, moved]);
    await oltp.admin.query(`UPDATE oltp.encounters SET encounter_class = 'changed-quietly' WHERE practice_id = $1 AND encounter_id = $2`, [a, quiet]);
    await oltp.admin.query(`UPDATE oltp.encounters SET updated_at = '2026-01-02 03:04:05.123456+00' WHERE practice_id = $1 AND encounter_id = $2`, [a, stamped]);
    // several changes of one row in one transaction, and an insert and its delete
    await oltp.admin.transaction(async (s) => {
      await s.query(`UPDATE oltp.encounters SET encounter_class = 'x1' WHERE practice_id = $1 AND encounter_id = $2`, [a, quiet]);
      await s.query(`UPDATE oltp.encounters SET encounter_class = 'x2' WHERE practice_id = $1 AND encounter_id = $2`, [a, quiet]);
      await s.query(`INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, updated_at) VALUES ($1, 'fresh-1', 'p-1', now()), ($1, 'fresh-2', 'p-2', now())`, [b]);
      await s.query(`SELECT set_config('tsform.hard_delete', 'on', true)`);
      await s.query(`DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id = 'fresh-2'`, [b]);
    });
    await oltp.admin.query(`INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, updated_at) VALUES ('not_a_practice', 'u-1', 'p-9', now())`);

    const notices = await captureOnce(lc, tenants);
    expect(notices).toEqual([expect.stringMatching(/1 change\(s\) carry a practice id that is not in tenants.yml, not loaded: "not_a_practice" \(1\)$/)]);
    expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);
    const ts = await wh.query(`SELECT CAST(updated_at AS VARCHAR) AS u FROM raw.encounters WHERE practice_id = $1 AND encounter_id = $2`, [a, stamped]);
    expect(String(ts.rows[0]!.u)).toBe('2026-01-02 03:04:05.123456+00');
    const where = await wh.query(`SELECT practice_id FROM raw.encounters WHERE encounter_id = $1`, [moved]);
    expect(where.rows.map((r) => r.practice_id)).toEqual([c]);
    // the deletions and the move count epochs in the practices that lost rows
    const epochs = await wh.query(`SELECT relation, tenant FROM tsform_meta.deletion_epochs WHERE epoch > 0 ORDER BY 1, 2`);
    expect(epochs.rows.map((r) => `${String(r.relation)}@${String(r.tenant)}`)).toEqual([`raw.encounters@${a}`, `raw.procedures@${b}`]);
    // nothing left in the queue
    expect(Number((await wh.query(`SELECT count(*) AS n FROM tsform_meta.logical_queue`)).rows[0]!.n)).toBe(0);
  }, 120_000);

  it('a new column arrives with its Relation message and is added to raw; unchanged TOASTed values keep their old value', async () => {
    const lc = logicalCaptureOf(wh, oltp.source, `p${project++}`, tenants);
    await captureOnce(lc, tenants);
    const [a] = tenants as [string];
    await oltp.admin.query(`ALTER TABLE oltp.encounters ADD COLUMN notes text`);
    await oltp.admin.query(`ALTER TABLE oltp.encounters ALTER COLUMN notes SET STORAGE EXTERNAL`);
    // 12,800 characters stored out of line (TOAST), not compressed
    await oltp.admin.query(`UPDATE oltp.encounters SET notes = (SELECT string_agg(md5(random()::text || g::text), '') FROM generate_series(1, 400) g) WHERE practice_id = $1`, [a]);
    const notices = await captureOnce(lc, tenants);
    expect(notices).toEqual([expect.stringContaining('new source column "notes" added to raw.encounters')]);
    expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);
    // an update that does not touch notes: pgoutput sends it as "unchanged TOAST"
    await oltp.admin.query(`UPDATE oltp.encounters SET encounter_class = 'after-toast' WHERE practice_id = $1`, [a]);
    expect(await captureOnce(lc, tenants)).toEqual([]);
    expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);
    const n = await wh.query(`SELECT count(*) AS n FROM raw.encounters WHERE practice_id = $1 AND length(notes) = 12800`, [a]);
    expect(Number(n.rows[0]!.n)).toBeGreaterThan(0);
  }, 120_000);

  it('a TRUNCATE empties every practice\'s slice and counts a deletion for each', async () => {
    const lc = logicalCaptureOf(wh, oltp.source, `p${project++}`, tenants);
    await captureOnce(lc, tenants);
    await oltp.admin.query(`TRUNCATE oltp.procedures`);
    await oltp.admin.query(`INSERT INTO oltp.procedures (practice_id, procedure_id, updated_at) VALUES ($1, 'after-truncate', now())`, [tenants[0]!]);
    await captureOnce(lc, tenants);
    expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);
    expect(Number((await wh.query(`SELECT count(*) AS n FROM raw.procedures`)).rows[0]!.n)).toBe(1);
    const epochs = await wh.query(`SELECT count(*) AS n FROM tsform_meta.deletion_epochs WHERE relation = 'raw.procedures' AND epoch > 0`);
    expect(Number(epochs.rows[0]!.n)).toBe(tenants.length);
  }, 120_000);
});
