import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../../src/adapters/adapter.ts';
import { createPostgresAdapter } from '../../../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../../../src/adapters/postgres/pg-oltp-source.ts';
import { Codes, TsformError } from '../../../src/errors.ts';
import { widens } from '../../../src/ingest/logical/follow-relation.ts';
import { streamNotices } from '../../../src/ingest/logical/logical-capture.ts';
import { canonicalType } from '../../../src/ingest/source-columns.ts';
import { openDuckdb, tempDuckdbPath } from '../support/capture-fixture.ts';
import { startSmallOltp, type SmallOltp } from '../support/capture-project.ts';
import { allDiffers, captureOnce, logicalCaptureOf } from './support/logical-fixture.ts';

describe('which raw type changes are widenings', () => {
  it('integers to wider integers, decimals with room, real to double; nothing else', () => {
    expect(widens('INTEGER', 'BIGINT')).toBe(true);
    expect(widens('INTEGER', 'DECIMAL(12,2)')).toBe(true);
    expect(widens('INTEGER', 'DECIMAL(10,2)')).toBe(false);
    expect(widens('BIGINT', 'DECIMAL(19,0)')).toBe(true);
    expect(widens('DECIMAL(10,2)', 'DECIMAL(12,4)')).toBe(true);
    expect(widens('DECIMAL(10,2)', 'DECIMAL(12,1)')).toBe(false);
    expect(widens('REAL', 'DOUBLE PRECISION')).toBe(true);
    expect(widens('BIGINT', 'INTEGER')).toBe(false);
    expect(widens('BIGINT', 'DOUBLE PRECISION')).toBe(false);
    // text holds every value, but the models reading the column would change meaning
    expect(widens('INTEGER', 'VARCHAR')).toBe(false);
    expect(widens('TIMESTAMP', 'TIMESTAMPTZ')).toBe(false);
  });
});

/**
 * Column types changed in the OLTP (DDL is not replicated; pgoutput's Relation message carries
 * each column's type): a widening follows into raw, anything else blocks that table's apply with
 * TSF436 until the next set-up copies it again, and the other table goes on. A dropped column
 * stays in raw. On both warehouse engines.
 */
describe.each(['duckdb', 'postgres'] as const)('column type changes into %s', (target) => {
  let oltp: SmallOltp;
  let source: PgOltpSource;
  let wh: Adapter;
  let remove: () => Promise<void> = async () => undefined;
  let tenants: string[];

  beforeAll(async () => {
    oltp = await startSmallOltp(['encounters', 'procedures'], { logical: {} });
    tenants = (await oltp.admin.query(`SELECT DISTINCT practice_id FROM oltp.encounters ORDER BY 1 LIMIT 3`)).rows.map((r) => String(r.practice_id));
    source = await PgOltpSource.open(oltp.server.url);
    if (target === 'duckdb') {
      const file = tempDuckdbPath();
      const duck = await openDuckdb(file.path);
      wh = duck;
      remove = async () => {
        await duck.close();
        file.remove();
      };
    } else {
      const db = await oltp.server.createDatabase();
      const pgWh = await createPostgresAdapter({ url: db.url });
      wh = pgWh;
      remove = async () => {
        await pgWh.close();
        await db.drop();
      };
    }
  });
  afterAll(async () => {
    await remove();
    await source?.close();
    await oltp?.stop();
  });

  const rawType = async (table: string, column: string) => canonicalType((await wh.describe('raw', table))!.columns.find((c) => c.name === column)!.type);

  it('widens raw for bigint, numeric with room and longer text; blocks int → text (TSF436) while the other table goes on; the next set-up copies it again; a dropped column stays', async () => {
    await oltp.admin.query(`ALTER TABLE oltp.encounters ADD COLUMN score integer, ADD COLUMN amount integer, ADD COLUMN tag varchar(10), ADD COLUMN gone text`);
    await oltp.admin.query(`ALTER TABLE oltp.procedures ADD COLUMN ref_no integer`);
    await oltp.admin.query(`UPDATE oltp.encounters SET score = 7, amount = 3, tag = 'short', gone = 'was here'`);
    await oltp.admin.query(`UPDATE oltp.procedures SET ref_no = 42`);
    const lc = logicalCaptureOf(wh, source, `types_${target}`, tenants);
    await captureOnce(lc, tenants);
    expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);
    expect([await rawType('encounters', 'score'), await rawType('encounters', 'amount'), await rawType('procedures', 'ref_no')]).toEqual(['INTEGER', 'INTEGER', 'INTEGER']);

    // widenings, with values the old types could not hold
    await oltp.admin.query(`ALTER TABLE oltp.encounters ALTER COLUMN score TYPE bigint, ALTER COLUMN amount TYPE numeric(12,2), ALTER COLUMN tag TYPE text`);
    const [a, b] = tenants as [string, string];
    await oltp.admin.query(`UPDATE oltp.encounters SET score = 5000000000, amount = 1.25, tag = 'longer than ten' WHERE practice_id = $1`, [a]);
    // not a widening: procedures' ref_no becomes text
    await oltp.admin.query(`ALTER TABLE oltp.procedures ALTER COLUMN ref_no TYPE text`);
    await oltp.admin.query(`UPDATE oltp.procedures SET ref_no = 'X-' || procedure_id WHERE practice_id = $1`, [b]);
    const setup = await lc.setUp(tenants);
    const streamed = await lc.stream(setup.lsn, { untilNow: true });
    const notes = streamNotices(lc.o.name, streamed);
    expect(notes).toContainEqual('oltp.encounters: column "score" is bigint in the OLTP now: raw.encounters."score" widened from INTEGER to BIGINT');
    expect(notes).toContainEqual('oltp.encounters: column "amount" is numeric(12,2) in the OLTP now: raw.encounters."amount" widened from INTEGER to DECIMAL(12,2)');
    expect(notes.filter((n) => n.includes('"tag"'))).toEqual([]);
    const blockNote = `${Codes.columnTypeChanged}: capture oltp.procedures: column "ref_no" changed type: raw raw.procedures has INTEGER, the OLTP now has text (raw type VARCHAR), which INTEGER cannot hold without loss`;
    expect(notes).toContainEqual(expect.stringContaining(blockNote));
    expect([await rawType('encounters', 'score'), await rawType('encounters', 'amount')]).toEqual(['BIGINT', 'DECIMAL(12,2)']);

    const failures: string[] = [];
    for (const spec of lc.specs) {
      for (const t of tenants) {
        try {
          await lc.apply(spec, t);
        } catch (err) {
          expect(err).toBeInstanceOf(TsformError);
          expect((err as TsformError).code).toBe(Codes.columnTypeChanged);
          expect((err as Error).message).toMatch(/^capture oltp\.procedures: column "ref_no" changed type: .* the next tsform run or tsform capture copies oltp\.procedures again from a snapshot/);
          failures.push(`${spec.label}@${t}`);
        }
      }
    }
    // procedures is held for every practice; encounters went on
    expect(failures).toEqual(tenants.map((t) => `oltp.procedures@${t}`));
    expect((await allDiffers(oltp.admin, wh, tenants, ['encounters'])).length).toBe(0);
    expect((await allDiffers(oltp.admin, wh, tenants, ['procedures'])).length).toBeGreaterThan(0);

    // the next capture copies procedures again, with code as text
    const notices = await captureOnce(lc, tenants);
    expect(notices).toContainEqual(`${Codes.columnTypeChanged}: oltp.procedures is copied again from a snapshot: a column changed to a type its raw table could not hold`);
    expect(await rawType('procedures', 'ref_no')).toBe('VARCHAR');
    expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);

    // a dropped column stays in raw: rows updated keep their value, new rows have NULL
    await oltp.admin.query(`ALTER TABLE oltp.encounters DROP COLUMN gone`);
    const kept = String((await oltp.admin.query(`SELECT min(encounter_id) AS id FROM oltp.encounters WHERE practice_id = $1`, [a])).rows[0]!.id);
    await oltp.admin.query(`UPDATE oltp.encounters SET encounter_class = 'after drop' WHERE practice_id = $1 AND encounter_id = $2`, [a, kept]);
    await oltp.admin.query(`INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, updated_at) VALUES ($1, 'after-drop', 'pat', now())`, [a]);
    const dropNotes = await captureOnce(lc, tenants);
    expect(dropNotes).toContainEqual('oltp.encounters: column "gone" is no longer in the source; raw keeps it (rows updated from now on keep their value there, new rows have NULL)');
    const rows = await wh.query(`SELECT encounter_id, encounter_class, gone FROM raw.encounters WHERE practice_id = $1 AND encounter_id IN ($2, 'after-drop') ORDER BY encounter_id`, [a, kept]);
    const byId = new Map(rows.rows.map((r) => [String(r.encounter_id), [r.encounter_class, r.gone]]));
    expect(byId.get(kept)).toEqual(['after drop', 'was here']);
    expect(byId.get('after-drop')).toEqual([null, null]);
  }, 180_000);
});
