import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import type { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { Codes, TsformError } from '../../src/errors.ts';
import { captureTenantSlice, type CaptureResult } from '../../src/ingest/capture.ts';
import type { OltpSource } from '../../src/ingest/oltp-source.ts';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import { resolveSpec } from '../../src/ingest/capture-chunk.ts';
import { steadyChunks } from '../../src/ingest/steady-capture.ts';
import { sweepMovedRows } from '../../src/ingest/move-sweep.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import { readWatermarks, STEADY } from '../../src/ingest/watermarks.ts';
import { waitFor } from '../support/wait-for.ts';
import { afterEachRead, rawDiffers, withFaults } from './support/capture-project.ts';
import { compareAll, demoSpecs, demoTenantIds, openDuckdb, startDemoOltp, startOltpTemplate, tempDuckdbPath, type OltpFixture, type OltpTemplate } from './support/capture-fixture.ts';

describe('per-practice capture from a PostgreSQL OLTP into DuckDB', () => {
  let oltp: OltpFixture;
  let wh: DuckDBAdapter;
  let file: { path: string; remove(): void };
  // 80 of the demo's 221 practices, every table: the whole demo took ~130 s of CI's four passes
  // each, and capture-targets.test.ts captures every practice (encounters, conditions) into both engines.
  const tenants = demoTenantIds().sort().slice(0, 80);

  beforeAll(async () => {
    oltp = await startDemoOltp();
    file = tempDuckdbPath();
    wh = await openDuckdb(file.path);
  });
  afterAll(async () => {
    await wh?.close();
    file?.remove();
    await oltp?.stop();
  });

  async function captureAll(chunkRows = 500): Promise<CaptureResult[]> {
    const out: CaptureResult[] = [];
    // readAheadBytes 0: every chunk's successor is read while it loads (the DuckDB pipeline)
    for (const spec of demoSpecs()) out.push(await captureTenantSlice(wh, oltp.source, spec, tenants, { chunkRows, concurrency: 2, readAheadBytes: 0 }));
    return out;
  }

  it('captures every table of 80 practices, then inserts, updates, soft and hard deletes: raw equals the OLTP practice by practice', async () => {
    const first = await captureAll();
    expect(first.flatMap((r) => r.failures)).toEqual([]);
    expect(await compareAll(oltp.admin, wh, new Set(tenants))).toEqual([]);
    const total = first.reduce((a, r) => a + [...r.rowsByTenant.values()].reduce((x, y) => x + y, 0), 0);
    expect(total).toBeGreaterThan(10_000);

    const [p1, p2, p3] = [...tenants].sort();
    // updates (updated_at bumped, as the application does), a soft delete, a hard delete (trigger → soft), an insert
    await oltp.admin.query(`UPDATE oltp.encounters SET description = description || ' (amended)', updated_at = now() WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY encounter_id LIMIT 5)`, [p1!]);
    await oltp.admin.query(`UPDATE oltp.conditions SET deleted_at = now(), updated_at = now() WHERE practice_id = $1 AND condition_id IN (SELECT condition_id FROM oltp.conditions WHERE practice_id = $1 ORDER BY condition_id LIMIT 3)`, [p2!]);
    await oltp.admin.query(`DELETE FROM oltp.claims WHERE practice_id = $1 AND claim_id IN (SELECT claim_id FROM oltp.claims WHERE practice_id = $1 ORDER BY claim_id LIMIT 4)`, [p3!]);
    await oltp.admin.query(
      `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, description, started_at, base_encounter_cost, updated_at)
       SELECT $1, 'new-' || g, 'pat-' || g, 'wellness', 'inserted ' || g, now(), 12.34, now() FROM generate_series(1, 7) g`,
      [p2!],
    );
    const second = await captureAll();
    expect(second.flatMap((r) => r.failures)).toEqual([]);
    const byTable = new Map(demoSpecs().map((s, i) => [s.table, second[i]!]));
    expect(byTable.get('encounters')!.rowsByTenant.get(p1!)).toBe(5);
    expect(byTable.get('encounters')!.rowsByTenant.get(p2!)).toBe(7);
    expect(byTable.get('conditions')!.deleted.get(p2!)).toBe(3);
    expect(byTable.get('claims')!.deleted.get(p3!)).toBe(4);
    // untouched practices read nothing new
    expect([...byTable.get('patients')!.rowsByTenant.values()].every((n) => n === 0)).toBe(true);
    expect(await compareAll(oltp.admin, wh, new Set(tenants))).toEqual([]);
  }, 300_000);
});

describe('capture: bad input and schema drift', () => {
  // each case has an OLTP database and a warehouse of its own: it passes alone and in any order
  let template: OltpTemplate;
  let oltp: OltpFixture;
  let wh: DuckDBAdapter;
  let file: { path: string; remove(): void };
  const tenants = demoTenantIds().sort().slice(0, 12);
  const spec = (table: string) => demoSpecs().find((s) => s.table === table)!;

  beforeAll(async () => {
    template = await startOltpTemplate();
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
    await oltp?.stop();
  });

  it('a statement timeout in one practice\'s extract fails that practice only, by name', async () => {
    const slow = tenants[3]!;
    const source = withFaults(oltp.source, { [slow]: 'timeout' });
    const r = await captureTenantSlice(wh, source, spec('encounters'), tenants, { timeoutMs: 300, chunkRows: 1000 });
    expect(r.failures.map((f) => f.message)).toEqual([expect.stringContaining(slow)]);
    expect(r.failures[0]).toMatchObject({ tenant: slow, code: '57014' });
    expect(r.failures[0]!.message).toContain(slow);
    const loaded = await wh.query('SELECT DISTINCT practice_id FROM raw.encounters');
    expect(new Set(loaded.rows.map((x) => x.practice_id))).toEqual(new Set(tenants.filter((t) => t !== slow && (r.rowsByTenant.get(t) ?? 0) > 0)));
    // the next run, without the fault, catches the practice up
    const again = await captureTenantSlice(wh, oltp.source, spec('encounters'), tenants, { chunkRows: 1000 });
    expect(again.failures).toEqual([]);
    expect(again.rowsByTenant.get(slow)).toBeGreaterThan(0);
    expect([...again.rowsByTenant].filter(([t, n]) => t !== slow && n > 0)).toEqual([]);
  });

  it.each([
    ['that wrote first', 20, true],
    // no xid until its first write: pg_stat_activity.backend_xid is NULL while it only reads
    ['that only read before the other commit (no xid yet)', 21, false],
  ])('a row committed late by a long OLTP transaction %s is not skipped: the watermark stays behind the oldest open transaction', async (_, practiceIndex, writesFirst) => {
    // a practice the other cases here do not use
    const p = demoTenantIds().sort()[practiceIndex]!;
    const encounters = spec('encounters');
    await captureTenantSlice(wh, oltp.source, encounters, [p], { chunkRows: 500 });
    const cols = await oltp.admin.query(`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'oltp.encounters'::regclass AND attname = 'updated_at'`);
    expect(cols.rows[0]!.t).toBe('timestamp with time zone');
    const insert = (c: pg.Client | PostgresAdapter, id: string) =>
      c.query(
        `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, description, started_at, base_encounter_cost, updated_at)
         VALUES ($1, $2, 'pat-late', 'wellness', 'late', now(), 1, now())`,
        [p, id],
      );
    const slow = new pg.Client({ connectionString: oltp.url });
    await slow.connect();
    try {
      await slow.query('BEGIN');
      if (writesFirst) await insert(slow, 'late-early'); // updated_at = this transaction's start
      else await slow.query('SELECT count(*) FROM oltp.encounters WHERE practice_id = $1', [p]);
      // 'late-after' must carry a later updated_at: wait until the server's clock has moved on
      const started = String((await slow.query('SELECT now()::text AS t')).rows[0]!.t);
      await waitFor('the server clock to pass the slow transaction\'s start', async () => (await oltp.admin.query('SELECT clock_timestamp() > $1::timestamptz AS later', [started])).rows[0]!.later === true, { everyMs: 1 });
      await insert(oltp.admin, 'late-after'); // committed, with a later updated_at
      const during = await captureTenantSlice(wh, oltp.source, encounters, [p], { chunkRows: 500 });
      expect(during.failures).toEqual([]);
      // without the horizon, 'late-after' would move the watermark past 'late-early' for good
      expect(during.rowsByTenant.get(p)).toBe(0);
      if (!writesFirst) await insert(slow, 'late-early'); // still stamped with the transaction's start
      await slow.query('COMMIT');
    } finally {
      await slow.end();
    }
    const after = await captureTenantSlice(wh, oltp.source, encounters, [p], { chunkRows: 500 });
    expect(after.rowsByTenant.get(p)).toBe(2);
    const live = await oltp.admin.query('SELECT count(*) AS n FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL', [p]);
    const raw = await wh.query('SELECT count(*) AS n, count(*) FILTER (WHERE encounter_id LIKE $2) AS late FROM raw.encounters WHERE practice_id = $1', [p, 'late-%']);
    expect([Number(raw.rows[0]!.n), Number(raw.rows[0]!.late)]).toEqual([Number(live.rows[0]!.n), 2]);
  });

  /** The OLTP, but its `nth` COPY kills its own connection (a real connection loss, 57P01). */
  function killingCopy(nth: number): OltpSource {
    let copies = 0;
    return {
      query: (sql, params) => oltp.source.query(sql, params),
      close: () => oltp.source.close(),
      classifyError: (err) => oltp.source.classifyError(err),
      readTransaction: (fn, options) =>
        oltp.source.readTransaction(
          (s) =>
            fn({
              query: (sql, params) => s.query(sql, params),
              copyOut: (sql, format) => s.copyOut(++copies === nth ? 'SELECT pg_terminate_backend(pg_backend_pid())' : sql, format),
            }),
          options,
        ),
    };
  }

  it.each([
    ['an onboarding practice (one snapshot)', false],
    ['a practice captured before (a transaction per chunk)', true],
  ])('a read ahead that fails while the chunk in front of it commits fails that practice only; what was committed stays: %s', async (_, capturedBefore) => {
    const p = tenants[capturedBefore ? 6 : 5]!;
    if (capturedBefore) {
      await captureTenantSlice(wh, oltp.source, spec('procedures'), [p]);
      await oltp.admin.query(`INSERT INTO oltp.procedures (practice_id, procedure_id, description, updated_at) SELECT $1, 'again-' || g, 'again', now() FROM generate_series(1, 12) g`, [p]);
    }
    // COPY 1 is the first chunk's; COPY 2, the first read ahead, loses its connection
    const r = await captureTenantSlice(wh, killingCopy(2), spec('procedures'), [p], { chunkRows: 5, readAheadBytes: 0 });
    expect(r.failures.map((f) => [f.tenant, f.code])).toEqual([[p, '57P01']]);
    expect(r.rowsByTenant.get(p)).toBe(5);
    const again = await captureTenantSlice(wh, oltp.source, spec('procedures'), [p], { chunkRows: 500 });
    expect(again.failures).toEqual([]);
    expect(await rawDiffers(oltp.admin, wh, 'procedures', [p])).toEqual([]);
  });

  it('an onboarding practice is read in one OLTP snapshot: a row changed meanwhile arrives with the next capture, once', async () => {
    const p = demoTenantIds().sort()[21]!;
    // two rows soft-deleted before the practice is first captured: counted, never loaded
    await oltp.admin.query(`UPDATE oltp.encounters SET deleted_at = now(), updated_at = now() WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY encounter_id LIMIT 2)`, [p]);
    const ids = (await oltp.admin.query('SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY updated_at, encounter_id', [p])).rows.map((x) => String(x.encounter_id));
    expect(ids.length).toBeGreaterThan(15);
    const [early, late] = [ids[0]!, ids[ids.length - 1]!];
    const first = await captureTenantSlice(wh, oltp.source, spec('encounters'), [p], {
      chunkRows: 5,
      readAheadBytes: 0,
      // after the first chunk: one row it holds and one a later chunk holds are changed
      onChunk: async (_, chunk) => {
        if (chunk.read !== 5 || (await countOf(p)) !== 5) return;
        await oltp.admin.query(`UPDATE oltp.encounters SET description = 'changed', updated_at = now() WHERE practice_id = $1 AND encounter_id IN ($2, $3)`, [p, early, late]);
      },
    });
    expect(first.failures).toEqual([]);
    expect([first.rowsByTenant.get(p), first.deleted.get(p)]).toEqual([ids.length, 2]);
    // the later chunk read the snapshot taken before the change
    const descriptions = async () => (await wh.query(`SELECT description FROM raw.encounters WHERE practice_id = $1 AND encounter_id IN ($2, $3) ORDER BY encounter_id = $2 DESC`, [p, early, late])).rows.map((x) => x.description);
    expect((await descriptions()).filter((d) => d === 'changed')).toEqual([]);
    const second = await captureTenantSlice(wh, oltp.source, spec('encounters'), [p]);
    expect(second.rowsByTenant.get(p)).toBe(2);
    expect(await descriptions()).toEqual(['changed', 'changed']);
    expect(await countOf(p)).toBe(ids.length);
    expect(await rawDiffers(oltp.admin, wh, 'encounters', [p])).toEqual([]);
  });

  it('a row moved away after the old practice read it, and captured by its new practice first, does not stay in the old slice', async () => {
    const pool = demoTenantIds().sort().slice(40, 60);
    const p = String((await oltp.admin.query(`SELECT practice_id FROM oltp.encounters WHERE practice_id = ANY($1::text[]) AND deleted_at IS NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`, [pool])).rows[0]!.practice_id);
    const q = demoTenantIds().sort()[61]!;
    await captureTenantSlice(wh, oltp.source, spec('encounters'), [p, q]);
    // a backlog of two chunks at p; its last row is the one that moves
    const ids = (await oltp.admin.query('SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY encounter_id LIMIT 10', [p])).rows.map((x) => String(x.encounter_id));
    expect(ids.length).toBe(10);
    for (const id of ids) await oltp.admin.query(`UPDATE oltp.encounters SET updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id = $2`, [p, id]);
    const moved = ids[ids.length - 1]!;
    const r = await captureTenantSlice(wh, oltp.source, spec('encounters'), [p], {
      chunkRows: 5,
      readAheadBytes: 0,
      onChunk: async (_, chunk) => {
        if (chunk.read !== 5 || chunk.watermark?.key[0] !== ids[4]) return;
        // p's last chunk is being read ahead, as the row was: let its snapshot be taken
        await new Promise((resolve) => setTimeout(resolve, 300));
        // the row moves to q, and q's capture takes it before p's last chunk commits
        await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id = $3`, [p, q, moved]);
        const taken = await captureTenantSlice(wh, oltp.source, spec('encounters'), [q]);
        expect(taken.rowsByTenant.get(q)).toBe(1);
      },
    });
    expect(r.failures).toEqual([]);
    expect(r.rowsByTenant.get(p)).toBe(10);
    const holders = (await wh.query(`SELECT practice_id FROM raw.encounters WHERE encounter_id = $1`, [moved])).rows.map((x) => String(x.practice_id));
    expect(holders).toEqual([q]);
    expect(await rawDiffers(oltp.admin, wh, 'encounters', [p, q])).toEqual([]);
  });

  it('a row moved to another practice and deleted there before that practice captured it leaves the old slice', async () => {
    const [p, q] = demoTenantIds().sort().slice(62, 64) as [string, string];
    await captureTenantSlice(wh, oltp.source, spec('encounters'), [p, q]);
    const moved = String((await oltp.admin.query('SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY encounter_id LIMIT 1', [p])).rows[0]!.encounter_id);
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id = $3`, [p, q, moved]);
    // the demo trigger turns the DELETE into a soft delete: q's capture sees the row only as deleted
    await oltp.admin.query('DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id = $2', [q, moved]);
    for (const t of [q, p]) expect((await captureTenantSlice(wh, oltp.source, spec('encounters'), [t])).failures).toEqual([]);
    expect((await wh.query(`SELECT practice_id FROM raw.encounters WHERE encounter_id = $1`, [moved])).rows.length).toBe(0);
    expect(await rawDiffers(oltp.admin, wh, 'encounters', [p, q])).toEqual([]);
  });

  /** One step of a row's history: `x>y` moves it from practice x to y, `del@x` deletes it at x (the demo trigger: a soft delete). */
  async function moveOrDelete(step: string, p: Record<string, string>, row: string): Promise<void> {
    if (step.startsWith('del@')) {
      await oltp.admin.query('DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id = $2', [p[step.slice(4)]!, row]);
      return;
    }
    const [from, to] = step.split('>') as [string, string];
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id = $3`, [p[from]!, p[to]!, row]);
  }

  // A row's history of moves (`x>y`), soft deletes (`del@x`) and captures of the known practices
  // (`cap`, all three at once); u is a practice not in tenants.yml. After a last capture, raw
  // equals the OLTP at every known practice: the row is where the OLTP has it, or nowhere.
  it.each([
    ['a>b b>c cap', 0],
    ['a>b cap b>a cap', 1],
    ['a>u u>b cap', 2],
    ['a>u del@u cap', 3],
    ['a>b b>u cap', 4],
    ['a>u cap u>a cap', 5],
    ['a>b del@b b>c cap', 6],
  ])('a row moved along %s ends where the OLTP has it', async (history, slot) => {
    // four practices of its own per history
    const [a, b, c, u] = demoTenantIds().sort().slice(100 + slot * 4, 104 + slot * 4) as [string, string, string, string];
    const known = [a, b, c];
    const p = { a, b, c, u } as Record<string, string>;
    const capture = async () => expect((await captureTenantSlice(wh, oltp.source, spec('encounters'), known, { knownTenants: known, concurrency: 2 })).failures).toEqual([]);
    await capture();
    const row = `moved-${slot}`;
    await oltp.admin.query(
      `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, description, started_at, base_encounter_cost, updated_at)
       VALUES ($1, $2, 'pat-moved', 'wellness', 'moved', now(), 1, clock_timestamp())`,
      [a, row],
    );
    await capture();
    for (const step of history.split(' ')) {
      if (step === 'cap') await capture();
      else await moveOrDelete(step, p, row);
    }
    const want = (await oltp.admin.query(`SELECT practice_id FROM oltp.encounters WHERE encounter_id = $1 AND deleted_at IS NULL AND practice_id = ANY($2::text[])`, [row, known])).rows.map((x) => String(x.practice_id));
    const have = (await wh.query(`SELECT practice_id FROM raw.encounters WHERE encounter_id = $1`, [row])).rows.map((x) => String(x.practice_id));
    expect(have).toEqual(want);
    expect(await rawDiffers(oltp.admin, wh, 'encounters', known)).toEqual([]);
  });

  it.each([
    ['swept from its position', false],
    ['swept for the first time over a raw table that holds rows (a warehouse from before the sweep)', true],
  ])('a row moved to a practice not in tenants.yml leaves the old slice; an id shared with such a practice stays: %s', async (_, firstSweep) => {
    const [p, away] = demoTenantIds().sort().slice(firstSweep ? 66 : 64, firstSweep ? 68 : 66) as [string, string];
    const capture = () => captureTenantSlice(wh, oltp.source, spec('encounters'), [p], { knownTenants: [p] });
    expect((await capture()).failures).toEqual([]);
    const position = `DELETE FROM tsform_meta.capture_watermarks WHERE stream = 'moved-away' RETURNING tenant`;
    if (firstSweep) expect((await wh.query(position)).rows.map((r) => String(r.tenant))).toEqual(['*']);
    const [moved, shared] = (await oltp.admin.query('SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY encounter_id LIMIT 2', [p])).rows.map((x) => String(x.encounter_id)) as [string, string];
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id = $3`, [p, away, moved]);
    // the same id at the other practice, the row at p unchanged: both are the OLTP's
    await oltp.admin.query(
      `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, description, started_at, base_encounter_cost, updated_at)
       SELECT $2, encounter_id, patient_id, encounter_class, description, started_at, base_encounter_cost, clock_timestamp() FROM oltp.encounters WHERE practice_id = $1 AND encounter_id = $3`,
      [p, away, shared],
    );
    const r = await capture();
    expect(r.failures).toEqual([]);
    expect(r.notes.filter((n) => n.includes('moved to a practice that is not in tenants.yml'))).toEqual([`oltp.encounters: 1 row(s) had moved to a practice that is not in tenants.yml: removed from raw at ${p}`]);
    const holders = async (id: string) => (await wh.query(`SELECT practice_id FROM raw.encounters WHERE encounter_id = $1`, [id])).rows.map((x) => String(x.practice_id));
    expect(await holders(moved)).toEqual([]);
    expect(await holders(shared)).toEqual([p]);
    expect(await rawDiffers(oltp.admin, wh, 'encounters', [p])).toEqual([]);
    // its incremental models drop it too: the removal counts as a deletion at p
    const epochs = await wh.query(`SELECT count(*) AS n FROM tsform_meta.deletion_epochs WHERE tenant = $1`, [p]);
    expect(Number(epochs.rows[0]!.n)).toBeGreaterThan(0);
    // the sweep resumes from its position: nothing more to remove
    expect((await capture()).notes.filter((n) => n.includes('moved to a practice'))).toEqual([]);
  });

  // Per-practice captures (`cap:x`: practice x alone, as `tsform run --tenant x` at x's own hour)
  // between a row's moves and soft deletes; a, b, c are in tenants.yml, u is not. After each
  // capture of x, x's slice equals the OLTP: no copy of a row that has moved on, whether or not
  // the row's new practice was captured since.
  it.each([
    ['a>b cap:a', 0],
    ['a>b cap:c cap:a cap:b', 1],
    ['a>b b>a cap:a', 2],
    ['a>b del@b cap:a', 3],
    ['a>b cap:b b>c cap:a cap:b', 4],
    ['a>u cap:a', 5],
    ['a>b cap:a b>a cap:b cap:a', 6],
  ])('per-practice captures: a row moved along %s is only where the OLTP has it after each capture', async (history, slot) => {
    const [a, b, c, u] = demoTenantIds().sort().slice(140 + slot * 4, 144 + slot * 4) as [string, string, string, string];
    const known = [a, b, c];
    const p = { a, b, c, u } as Record<string, string>;
    const capture = async (tenants: string[]) => {
      const r = await captureTenantSlice(wh, oltp.source, spec('encounters'), tenants, { knownTenants: known });
      expect(r.failures).toEqual([]);
      expect(await rawDiffers(oltp.admin, wh, 'encounters', tenants), `after capturing ${tenants.join(', ')}`).toEqual([]);
    };
    await capture(known);
    const row = String((await oltp.admin.query('SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL ORDER BY encounter_id LIMIT 1', [a])).rows[0]!.encounter_id);
    for (const step of history.split(' ')) {
      if (step.startsWith('cap:')) await capture([p[step.slice(4)]!]);
      else await moveOrDelete(step, p, row);
    }
    await capture(known);
  });

  it('the sweep for moved rows pages through rows stamped alike without skipping or repeating one, and resumes from its position', async () => {
    const [a, b, c] = demoTenantIds().sort().slice(170, 173) as [string, string, string];
    const known = [a, b, c];
    const encounters = resolveSpec(spec('encounters'));
    expect((await captureTenantSlice(wh, oltp.source, encounters, known, { knownTenants: known })).failures).toEqual([]);
    const ids = (await oltp.admin.query('SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY encounter_id LIMIT 11', [a])).rows.map((x) => String(x.encounter_id));
    // one statement each: every moved row carries the same updated_at, so pages split inside a tie
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = now() WHERE practice_id = $1 AND encounter_id = ANY($3::text[])`, [a, b, ids.slice(0, 7)]);
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = now() WHERE practice_id = $1 AND encounter_id = ANY($3::text[])`, [a, c, ids.slice(7)]);
    const swept = await sweepMovedRows(wh, oltp.source, encounters, 'tsform_meta', known, 3);
    expect(swept).toEqual({ removed: { tenants: [a], rows: 11 }, away: { tenants: [], rows: 0 } });
    expect((await wh.query(`SELECT count(*) AS n FROM raw.encounters WHERE encounter_id = ANY($1::VARCHAR[])`, [ids])).rows[0]!.n).toBe(0);
    expect(await rawDiffers(oltp.admin, wh, 'encounters', [a])).toEqual([]);
    expect(await sweepMovedRows(wh, oltp.source, encounters, 'tsform_meta', known, 3)).toEqual({ removed: { tenants: [], rows: 0 }, away: { tenants: [], rows: 0 } });
    // the new practices bring them in: each id at one practice
    expect((await captureTenantSlice(wh, oltp.source, encounters, [b, c], { knownTenants: known })).failures).toEqual([]);
    const holders = await wh.query(`SELECT practice_id, count(*) AS n FROM raw.encounters WHERE encounter_id = ANY($1::VARCHAR[]) GROUP BY 1 ORDER BY 1`, [ids]);
    expect(holders.rows.map((x) => [String(x.practice_id), Number(x.n)])).toEqual([[b, 7], [c, 4]]);
  });

  it('an onboarding chunk finding rows in the slice that the stream did not write takes the general path: no key twice', async () => {
    const p = demoTenantIds().sort()[22]!;
    const ids = (await oltp.admin.query('SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY updated_at, encounter_id', [p])).rows.map((x) => String(x.encounter_id));
    const last = ids[ids.length - 1]!;
    const r = await captureTenantSlice(wh, oltp.source, spec('encounters'), [p], {
      chunkRows: 5,
      readAheadBytes: 0,
      // another writer puts a stale copy of a row that a later chunk holds into the slice
      onChunk: async (_, chunk) => {
        if (chunk.read !== 5 || (await countOf(p)) !== 5) return;
        await wh.query(`INSERT INTO raw.encounters (practice_id, encounter_id, description) VALUES ($1, $2, 'stale')`, [p, last]);
      },
    });
    expect(r.failures).toEqual([]);
    const keys = await wh.query('SELECT count(*) AS n, count(DISTINCT encounter_id) AS k FROM raw.encounters WHERE practice_id = $1', [p]);
    expect([Number(keys.rows[0]!.n), Number(keys.rows[0]!.k)]).toEqual([ids.length, ids.length]);
    expect(await rawDiffers(oltp.admin, wh, 'encounters', [p])).toEqual([]);
  });

  const countOf = async (p: string) => Number((await wh.query('SELECT count(*) AS n FROM raw.encounters WHERE practice_id = $1', [p])).rows[0]!.n);

  it('says when the commit horizon cannot protect a table: a role blind to other sessions, an updated column without time zone', async () => {
    const p = tenants[7]!;
    const clean = await captureTenantSlice(wh, oltp.source, spec('encounters'), [p]);
    expect(clean.notes.filter((n) => /pg_read_all_stats|not timestamptz/.test(n))).toEqual([]);

    // before raw.medications exists (afterwards a changed type is drift, TSF403)
    await oltp.admin.query(`ALTER TABLE oltp.medications ALTER COLUMN updated_at TYPE timestamp USING updated_at AT TIME ZONE 'UTC'`);
    // roles belong to the server, not the case's database: a name of this case's own
    const name = `tsf_reader_${randomBytes(4).toString('hex')}`;
    const role = quoteIdent(name);
    await oltp.admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'reader-pw'`);
    await oltp.admin.query(`GRANT USAGE ON SCHEMA oltp TO ${role}`);
    await oltp.admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA oltp TO ${role}`);
    const url = new URL(oltp.url);
    [url.username, url.password] = [name, 'reader-pw'];
    const reader = await PgOltpSource.open(url.toString());
    try {
      const r = await captureTenantSlice(wh, reader, spec('medications'), [p]);
      expect(r.failures).toEqual([]);
      expect(r.notes).toContainEqual(expect.stringMatching(/^oltp\.medications: the OLTP role cannot see other sessions' open transactions \(grant it pg_read_all_stats\)/));
      expect(r.notes).toContainEqual(expect.stringMatching(/^oltp\.medications: column "updated_at" is timestamp without time zone, not timestamptz/));
    } finally {
      await reader.close();
      await oltp.admin.query(`DROP OWNED BY ${role}`);
      await oltp.admin.query(`DROP ROLE ${role}`);
    }
    expect(await rawDiffers(oltp.admin, wh, 'medications', [p])).toEqual([]);
  });

  it('a failed sweep for moved rows is a note: the practices are captured all the same, and the next capture sweeps from the same position', async () => {
    const [a, b] = demoTenantIds().sort().slice(178, 180) as [string, string];
    const encounters = spec('encounters');
    expect((await captureTenantSlice(wh, oltp.source, encounters, [a, b], { knownTenants: [a, b] })).failures).toEqual([]);
    const moved = String((await oltp.admin.query('SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY encounter_id LIMIT 1', [a])).rows[0]!.encounter_id);
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id = $3`, [a, b, moved]);
    const failing = afterEachRead(oltp.source, async (_, sql) => {
      if (sql.includes('AS __tsf_u')) throw new Error('the sweep page read failed (injected)');
    });
    const r = await captureTenantSlice(wh, failing, encounters, [a], { knownTenants: [a, b] });
    expect(r.failures).toEqual([]);
    expect(r.notes.filter((n) => n.includes('sweep'))).toEqual([expect.stringMatching(/^oltp\.encounters: the sweep for rows moved between practices failed \(tried again next run; .*injected/)]);
    expect((await wh.query(`SELECT practice_id FROM raw.encounters WHERE encounter_id = $1`, [moved])).rows.map((x) => String(x.practice_id))).toEqual([a]);
    expect((await captureTenantSlice(wh, oltp.source, encounters, [a], { knownTenants: [a, b] })).failures).toEqual([]);
    expect(await rawDiffers(oltp.admin, wh, 'encounters', [a])).toEqual([]);
  });

  it('says when no index of the OLTP table starts with the updated column (the sweep for moved rows then reads the whole table), and still sweeps', async () => {
    const [a, b] = demoTenantIds().sort().slice(175, 177) as [string, string];
    const gap = (notes: string[]) => notes.filter((n) => n.includes('starts with column'));
    const capture = async (tenants: string[]) => {
      const r = await captureTenantSlice(wh, oltp.source, spec('encounters'), tenants, { knownTenants: [a, b] });
      expect(r.failures).toEqual([]);
      return r.notes;
    };
    expect(gap(await capture([a, b]))).toEqual([]);
    // a partial index does not serve every row; the capture index leads with practice_id
    await oltp.admin.query(`DROP INDEX oltp.encounters_updated_idx`);
    await oltp.admin.query(`CREATE INDEX encounters_recent_idx ON oltp.encounters (updated_at) WHERE deleted_at IS NULL`);
    const moved = String((await oltp.admin.query('SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY encounter_id LIMIT 1', [a])).rows[0]!.encounter_id);
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = clock_timestamp() WHERE practice_id = $1 AND encounter_id = $3`, [a, b, moved]);
    expect(gap(await capture([a]))).toEqual([
      'oltp.encounters: no index of oltp.encounters starts with column "updated_at": each run\'s sweep for rows moved between practices reads the whole table; add one (CREATE INDEX ON "oltp"."encounters" ("updated_at"))',
    ]);
    expect(await rawDiffers(oltp.admin, wh, 'encounters', [a])).toEqual([]);
  });

  it('rows of an unknown practice id are counted and reported, never loaded', async () => {
    await oltp.admin.query(
      `INSERT INTO oltp.procedures (practice_id, procedure_id, description, updated_at) SELECT 'p_not_a_tenant', 'x-' || g, 'stray', now() FROM generate_series(1, 9) g`,
    );
    const r = await captureTenantSlice(wh, oltp.source, spec('procedures'), tenants, { knownTenants: demoTenantIds() });
    expect(r.failures).toEqual([]);
    expect(r.unknownTenantRows).toBe(9);
    expect(r.notes.join('\n')).toMatch(/9 row\(s\) carry a practice_id that is not a known practice.*"p_not_a_tenant" \(9\)/);
    const stray = await wh.query(`SELECT count(*) AS n FROM raw.procedures WHERE practice_id = 'p_not_a_tenant'`);
    expect(Number(stray.rows[0]!.n)).toBe(0);
  });

  it("a column another practice's chunk added after raw's columns were read is not added twice", async () => {
    const [a, b] = [tenants[8]!, tenants[9]!];
    const claims = spec('claims');
    await captureTenantSlice(wh, oltp.source, claims, [a, b]);
    const stale = (await wh.describe('raw', 'claims'))!.columns;
    await oltp.admin.query('ALTER TABLE oltp.claims ADD COLUMN memo text');
    await oltp.admin.query(`UPDATE oltp.claims SET memo = 'm', updated_at = now() WHERE practice_id IN ($1, $2)`, [a, b]);
    const first = await captureTenantSlice(wh, oltp.source, claims, [a]);
    expect(first.notes).toContain('oltp.claims: new source column "memo" added to raw.claims');
    // b's stream planned its drift against raw's columns as they were before a's chunk added memo
    const label = resolveSpec(claims).label;
    const after = (await readWatermarks(wh, 'tsform_meta', label, STEADY, [b])).get(b);
    const chunks = [];
    for await (const c of steadyChunks(wh, oltp.source, resolveSpec(claims), 'tsform_meta', { columns: stale }, { tenant: b, after, chunkRows: 500 })) chunks.push(c);
    expect(chunks.flatMap((c) => c.added)).toEqual([]);
    expect(chunks.reduce((n, c) => n + c.loaded, 0)).toBeGreaterThan(0);
    expect(await rawDiffers(oltp.admin, wh, 'claims', [a, b])).toEqual([]);
  });

  it('a new nullable source column is added to raw; a type change is a coded error naming table and column', async () => {
    const first = await captureTenantSlice(wh, oltp.source, spec('providers'), tenants);
    expect(first.failures).toEqual([]);
    await oltp.admin.query('ALTER TABLE oltp.providers ADD COLUMN npi text');
    await oltp.admin.query(`UPDATE oltp.providers SET npi = 'NPI-' || provider_id, updated_at = now() WHERE practice_id = $1`, [tenants[0]!]);
    // small chunks, each read ahead of the one in front of it: the drift is planned at commit
    const second = await captureTenantSlice(wh, oltp.source, spec('providers'), tenants, { chunkRows: 3, readAheadBytes: 0, concurrency: 2 });
    expect(second.failures).toEqual([]);
    expect(second.notes.join('\n')).toContain('new source column "npi"');
    const cols = (await wh.describe('raw', 'providers'))!.columns.map((c) => c.name);
    expect(cols).toContain('npi');
    expect(cols).toContain('name'); // nothing lost
    const npi = await wh.query(`SELECT count(*) AS n FROM raw.providers WHERE npi IS NOT NULL`);
    const expected = await oltp.admin.query(`SELECT count(*) AS n FROM oltp.providers WHERE practice_id = $1`, [tenants[0]!]);
    expect(Number(npi.rows[0]!.n)).toBe(Number(expected.rows[0]!.n));
    const rawCount = await wh.query('SELECT count(*) AS n FROM raw.providers');
    const oltpCount = await oltp.admin.query('SELECT count(*) AS n FROM oltp.providers WHERE practice_id = ANY($1::text[])', [tenants]);
    expect(Number(rawCount.rows[0]!.n)).toBe(Number(oltpCount.rows[0]!.n));

    await oltp.admin.query('ALTER TABLE oltp.providers ALTER COLUMN lat TYPE text');
    const err = await captureTenantSlice(wh, oltp.source, spec('providers'), tenants).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TsformError);
    expect((err as TsformError).code).toBe(Codes.schemaChanged);
    expect((err as Error).message).toMatch(/oltp\.providers: column "lat" changed type/);

    await oltp.admin.query('ALTER TABLE oltp.providers ALTER COLUMN lat TYPE double precision USING lat::double precision');
    await oltp.admin.query('ALTER TABLE oltp.providers DROP COLUMN zip');
    const dropped = await captureTenantSlice(wh, oltp.source, spec('providers'), tenants).catch((e: unknown) => e);
    expect((dropped as TsformError).code).toBe(Codes.schemaChanged);
    expect((dropped as Error).message).toMatch(/oltp\.providers: column "zip" exists in raw but no longer in the source/);
  });
});

