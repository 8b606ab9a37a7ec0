import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DuckDBAdapter } from '../../../src/adapters/duckdb/duckdb-adapter.ts';
import { Codes } from '../../../src/errors.ts';
import { slotLagWarning } from '../../../src/ingest/logical/slot-setup.ts';
import { openDuckdb, tempDuckdbPath, type OltpFixture, type OltpTemplate } from '../support/capture-fixture.ts';
import { templateOfFirstPractices } from '../support/capture-project.ts';
import { allDiffers, captureOnce, logicalCaptureOf } from './support/logical-fixture.ts';

describe('a slot that falls behind', () => {
  it('warns while it still works, once less than a quarter of max_slot_wal_keep_size is left or the WAL is unreserved', () => {
    const mb = 1024 * 1024;
    expect(slotLagWarning('s', { exists: true, walStatus: 'reserved', safeWalSize: 80 * mb, maxKeepBytes: 100 * mb })).toBeUndefined();
    expect(slotLagWarning('s', { exists: true, walStatus: 'extended', safeWalSize: 20 * mb, maxKeepBytes: 100 * mb })).toMatch(/^replication slot s is falling behind: 20480 kB of WAL left/);
    expect(slotLagWarning('s', { exists: true, walStatus: 'unreserved', safeWalSize: 0, maxKeepBytes: 100 * mb })).toMatch(/about to be lost/);
    // no limit: nothing to warn about, the OLTP keeps the WAL
    expect(slotLagWarning('s', { exists: true, walStatus: 'reserved', safeWalSize: null, maxKeepBytes: -1 })).toBeUndefined();
    expect(slotLagWarning('s', { exists: true, walStatus: 'lost' })).toBeUndefined();
  });

  describe('max_slot_wal_keep_size 1MB', () => {
    let template: OltpTemplate;
    let tenants: string[];
    let oltp: OltpFixture;
    let file: { path: string; remove(): void };
    let wh: DuckDBAdapter;

    beforeAll(async () => {
      ({ template, tenants } = await templateOfFirstPractices(3, ['encounters', 'procedures'], { logical: { maxSlotWalKeepSize: '1MB' } }));
      oltp = await template.fresh();
      file = tempDuckdbPath();
      wh = await openDuckdb(file.path);
    });
    afterAll(async () => {
      await wh?.close();
      file?.remove();
      await oltp?.admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`).catch(() => undefined);
      await oltp?.stop();
      await template?.stop();
    });

    it('wal_status lost: the next capture copies every table again from a new slot, says so (TSF433), and raw equals the OLTP', async () => {
      const lc = logicalCaptureOf(wh, oltp.source, 'lost', tenants);
      await captureOnce(lc, tenants);
      const [a] = tenants as [string];
      // changes the lost slot will never deliver
      await oltp.admin.transaction(async (s) => {
        await s.query(`SELECT set_config('tsform.hard_delete', 'on', true)`);
        await s.query(`DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 LIMIT 2)`, [a]);
      });
      await oltp.admin.query(`UPDATE oltp.procedures SET description = 'while lost' WHERE practice_id = $1`, [a]);
      for (let i = 0; i < 6; i++) {
        await oltp.admin.query(`CREATE TABLE public.junk_${i} AS SELECT g, md5(g::text) AS m FROM generate_series(1, 60000) g`);
        await oltp.admin.query('SELECT pg_switch_wal()');
        await oltp.admin.query('CHECKPOINT');
      }
      const status = await oltp.admin.query(`SELECT wal_status FROM pg_replication_slots WHERE database = current_database()`);
      expect(status.rows).toEqual([{ wal_status: 'lost' }]);
      const notices = await captureOnce(lc, tenants);
      expect(notices).toContainEqual(expect.stringMatching(new RegExp(`^${Codes.slotLost}: replication slot .* was lost`)));
      expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);
      expect((await oltp.admin.query(`SELECT wal_status FROM pg_replication_slots WHERE database = current_database()`)).rows).toEqual([{ wal_status: 'reserved' }]);
      // and the new slot streams
      await oltp.admin.query(`UPDATE oltp.encounters SET encounter_class = 'after' WHERE practice_id = $1`, [a]);
      await captureOnce(lc, tenants);
      expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);
    }, 180_000);
  });
});
