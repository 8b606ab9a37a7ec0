import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DuckDBAdapter } from '../../../src/adapters/duckdb/duckdb-adapter.ts';
import { Codes } from '../../../src/errors.ts';
import { tablesToRecopy, type ChangeEvidence } from '../../../src/ingest/logical/change-evidence.ts';
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

  describe('which tables a lost slot copies again (the recorded modification counters vs now)', () => {
    const labels = ['oltp.a', 'oltp.b'];
    const base: ChangeEvidence = {
      version: 150018,
      trackCounts: true,
      statsReset: null,
      postmasterStart: '2026-12-03 10:00:00+00',
      tables: { 'oltp.a': { relid: '1', filenode: '10', modifications: '100' }, 'oltp.b': { relid: '2', filenode: '20', modifications: '5' } },
    };
    const withTable = (label: string, t: Partial<ChangeEvidence['tables'][string]>): ChangeEvidence => ({ ...base, tables: { ...base.tables, [label]: { ...base.tables[label]!, ...t } } });
    it('only the tables whose counters, relfilenode or oid moved', () => {
      expect(tablesToRecopy(labels, base, base)).toEqual({ all: false, changed: new Map() });
      expect(tablesToRecopy(labels, base, withTable('oltp.a', { modifications: '103' }))).toEqual({ all: false, changed: new Map([['oltp.a', '3 row change(s) counted']]) });
      expect(tablesToRecopy(labels, base, withTable('oltp.b', { filenode: '21' }))).toEqual({ all: false, changed: new Map([['oltp.b', 'the table was truncated or rewritten']]) });
      expect(tablesToRecopy(labels, base, withTable('oltp.b', { relid: '3' })).all).toBe(false);
      // a counter that went back (a single table's reset) is a change too
      expect(tablesToRecopy(labels, base, withTable('oltp.a', { modifications: '1' }))).toEqual({ all: false, changed: new Map([['oltp.a', 'its counters were reset']]) });
      // a table without a record (added since) is copied
      expect(tablesToRecopy([...labels, 'oltp.c'], base, { ...base, tables: { ...base.tables, 'oltp.c': { relid: '4', filenode: '40', modifications: '0' } } })).toEqual({ all: false, changed: new Map([['oltp.c', 'no counters recorded']]) });
    });
    it('every table when the counters prove nothing: none recorded, reset, a restart, track_counts off, PostgreSQL before 15', () => {
      expect(tablesToRecopy(labels, undefined, base)).toMatchObject({ all: true, why: expect.stringMatching(/no modification counters were recorded/) });
      expect(tablesToRecopy(labels, base, { ...base, statsReset: '2026-12-03 11:00:00+00' })).toMatchObject({ all: true, why: expect.stringMatching(/statistics were reset/) });
      expect(tablesToRecopy(labels, base, { ...base, postmasterStart: '2026-12-03 11:00:00+00' })).toMatchObject({ all: true, why: expect.stringMatching(/restarted/) });
      expect(tablesToRecopy(labels, base, { ...base, trackCounts: false })).toMatchObject({ all: true, why: expect.stringMatching(/track_counts is off/) });
      expect(tablesToRecopy(labels, { ...base, version: 140010 }, { ...base, version: 140010 })).toMatchObject({ all: true, why: expect.stringMatching(/PostgreSQL 14/) });
    });
  });

  describe('max_slot_wal_keep_size 1MB', () => {
    let template: OltpTemplate;
    let tenants: string[];
    const cleanups: (() => Promise<void>)[] = [];

    beforeAll(async () => {
      ({ template, tenants } = await templateOfFirstPractices(3, ['encounters', 'procedures'], { logical: { maxSlotWalKeepSize: '1MB' } }));
    });
    afterAll(async () => {
      for (const c of cleanups) await c().catch(() => undefined);
      await template?.stop();
    });

    /** A fresh OLTP and DuckDB warehouse, captured once. */
    async function captured(project: string): Promise<{ oltp: OltpFixture; wh: DuckDBAdapter; lc: ReturnType<typeof logicalCaptureOf> }> {
      const oltp = await template.fresh();
      const file = tempDuckdbPath();
      const wh = await openDuckdb(file.path);
      cleanups.push(async () => {
        await wh.close();
        file.remove();
        await oltp.admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`).catch(() => undefined);
        await oltp.stop();
      });
      const lc = logicalCaptureOf(wh, oltp.source, project, tenants);
      await captureOnce(lc, tenants);
      return { oltp, wh, lc };
    }

    /** WAL of an uncaptured table until the slot's is gone. */
    async function forceLost(oltp: OltpFixture): Promise<void> {
      for (let i = 0; i < 6; i++) {
        await oltp.admin.query(`CREATE TABLE public.junk_${i} AS SELECT g, md5(g::text) AS m FROM generate_series(1, 60000) g`);
        await oltp.admin.query('SELECT pg_switch_wal()');
        await oltp.admin.query('CHECKPOINT');
      }
      const status = await oltp.admin.query(`SELECT wal_status FROM pg_replication_slots WHERE database = current_database()`);
      expect(status.rows).toEqual([{ wal_status: 'lost' }]);
    }

    it('wal_status lost: only the table that changed is copied again from a new slot (TSF435 names it), and raw equals the OLTP for both', async () => {
      const { oltp, wh, lc } = await captured('lost');
      const [a] = tenants as [string];
      // changes the lost slot will never deliver, all in encounters
      await oltp.admin.transaction(async (s) => {
        await s.query(`SELECT set_config('tsform.hard_delete', 'on', true)`);
        await s.query(`DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 LIMIT 2)`, [a]);
      });
      await oltp.admin.query(`UPDATE oltp.encounters SET encounter_class = 'while lost' WHERE practice_id = $1`, [a]);
      // procedures' raw is marked: a copy would overwrite the mark
      await wh.query(`UPDATE raw.procedures SET description = 'kept' WHERE practice_id = $1 AND procedure_id = (SELECT min(procedure_id) FROM raw.procedures WHERE practice_id = $1)`, [a]);
      await forceLost(oltp);
      const setup = await lc.setUp(tenants);
      expect(setup.copied).toEqual(['oltp.encounters']);
      expect(setup.notes).toContainEqual(expect.stringMatching(new RegExp(`^${Codes.slotLostPartial}: replication slot .* was lost .*copied again from a new snapshot: oltp\\.encounters \\(\\d+ row change\\(s\\) counted\\).*their raw stays: oltp\\.procedures$`)));
      expect(Number((await wh.query(`SELECT count(*) AS n FROM raw.procedures WHERE description = 'kept'`)).rows[0]!.n)).toBe(1);
      expect((await oltp.admin.query(`SELECT wal_status FROM pg_replication_slots WHERE database = current_database()`)).rows).toEqual([{ wal_status: 'reserved' }]);
      // the new slot streams; the mark goes with the next change of that row
      await oltp.admin.query(`UPDATE oltp.procedures SET description = coalesce(description, '') || '.' WHERE practice_id = $1 AND procedure_id = (SELECT min(procedure_id) FROM oltp.procedures WHERE practice_id = $1)`, [a]);
      await oltp.admin.query(`UPDATE oltp.encounters SET encounter_class = 'after' WHERE practice_id = $1`, [a]);
      const streamed = await lc.stream(setup.lsn, { untilNow: true });
      expect(streamed.transactions).toBe(2);
      for (const spec of lc.specs) for (const t of tenants) await lc.apply(spec, t);
      expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);
    }, 180_000);

    it('a follower records the counters as it streams: a slot lost after it stopped, with nothing changed since, copies no table again', async () => {
      const { oltp, wh, lc } = await captured('lost_follow');
      const [a] = tenants as [string];
      const setup = await lc.setUp(tenants);
      const stop = new AbortController();
      const following = lc.stream(setup.lsn, { untilNow: false, follower: true, signal: stop.signal, evidenceEveryMs: 0 });
      const counters = async () => String((await oltp.admin.query(`SELECT (n_tup_ins + n_tup_upd + n_tup_del)::text AS n FROM pg_stat_user_tables WHERE schemaname = 'oltp' AND relname = 'procedures'`)).rows[0]!.n);
      const before = await counters();
      await oltp.admin.query(`UPDATE oltp.procedures SET description = 'followed' WHERE practice_id = $1`, [a]);
      // until the OLTP published the update's counters, and the follower stored them
      const stored = async () => {
        const r = await wh.query(`SELECT evidence_json FROM tsform_meta.logical_evidence`);
        return r.rows[0] ? (JSON.parse(String(r.rows[0].evidence_json)) as ChangeEvidence).tables['oltp.procedures']?.modifications : undefined;
      };
      const end = performance.now() + 60_000;
      while (((await counters()) === before || (await stored()) !== (await counters())) && performance.now() < end) await new Promise((r) => setTimeout(r, 200));
      expect(await counters()).not.toBe(before);
      expect(await stored()).toBe(await counters());
      stop.abort();
      await following;
      for (const spec of lc.specs) for (const t of tenants) await lc.apply(spec, t);
      await forceLost(oltp);
      const after = await lc.setUp(tenants);
      expect(after.copied, after.notes.join("\n")).toEqual([]);
      expect(after.notes).toContainEqual(expect.stringMatching(new RegExp(`^${Codes.slotLostPartial}: .* no captured table changed since; .* their raw stays: oltp\\.encounters, oltp\\.procedures$`)));
      expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);
    }, 180_000);

    it('statistics reset since the counters were recorded: every table is copied again (TSF433 says why)', async () => {
      const { oltp, wh, lc } = await captured('lost_reset');
      const [, b] = tenants as [string, string];
      await oltp.admin.query(`UPDATE oltp.procedures SET description = 'while lost' WHERE practice_id = $1`, [b]);
      await oltp.admin.query('SELECT pg_stat_reset()');
      await forceLost(oltp);
      const notices = await captureOnce(lc, tenants);
      expect(notices).toContainEqual(expect.stringMatching(new RegExp(`^${Codes.slotLost}: replication slot .* was lost .*every table is copied again from a new snapshot: the OLTP's statistics were reset`)));
      expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);
    }, 180_000);
  });
});
