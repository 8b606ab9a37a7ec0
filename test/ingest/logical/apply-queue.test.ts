import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../../src/adapters/adapter.ts';
import { lsnSortKey } from '../../../src/adapters/logical-replication.ts';
import { createPostgresAdapter } from '../../../src/adapters/postgres/postgres-adapter.ts';
import { Codes } from '../../../src/errors.ts';
import { migrateMeta } from '../../../src/warehouse/meta-schema.ts';
import { resolveSpec } from '../../../src/ingest/capture-spec.ts';
import type { OltpSource } from '../../../src/ingest/oltp-source.ts';
import { applyGroups, groupPractices } from '../../../src/ingest/logical/apply-groups.ts';
import { LogicalCapture } from '../../../src/ingest/logical/logical-capture.ts';
import { enqueue, writeSlotRecord } from '../../../src/ingest/logical/queue-writer.ts';
import type { QueuedChange } from '../../../src/ingest/logical/route-changes.ts';
import { prng, testSeed } from '../../support/prng.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../../support/postgres.ts';
import { openDuckdb, tempDuckdbPath } from '../support/capture-fixture.ts';

/**
 * The set-based apply (queue-fold-sql.ts) against a reference: the same changes applied one by
 * one in JavaScript (an upsert sets the columns it carries, on a row that exists; a delete
 * removes the key; a truncate empties the practice). Random sequences over a few keys so that
 * keys change many times within one batch, with columns left out (pgoutput's unchanged TOAST),
 * deletes then re-inserts, moves between practices, truncates, NULLs, microseconds and text that
 * JSON must escape; applied in small batches (prefixes of each practice's queue), per practice
 * and in groups, on DuckDB and PostgreSQL.
 */
const SEED = testSeed(20261204);
const SLOT = 'tsform_apply_test';
const TENANTS = ['pa', 'pb', 'pc', 'pd'];
const CARRIED = ['kind', 'amount', 'note', 'at'] as const;
const spec = resolveSpec({ table: 'events', key: ['event_id'], tenantColumn: 'practice_id' });
type Row = Record<string, string | null>;

const TEXTS = ['plain', '', 'quote " and \\ backslash', 'ünïcødé ✓', '{"json":[1]}', 'line\nbreak', "it's"];
function randomValue(rand: () => number, col: (typeof CARRIED)[number]): string | null {
  if (rand() < 0.15) return null;
  switch (col) {
    case 'kind':
      return TEXTS[Math.floor(rand() * TEXTS.length)]!;
    case 'amount':
      return `${Math.floor(rand() * 100000)}.${String(Math.floor(rand() * 100)).padStart(2, '0')}`;
    case 'note':
      return `n${Math.floor(rand() * 1e6)}`;
    case 'at':
      // six digits of microseconds, the last not 0: both engines print them exactly so
      return `2026-0${1 + Math.floor(rand() * 9)}-1${Math.floor(rand() * 9)} 0${Math.floor(rand() * 9)}:1${Math.floor(rand() * 9)}:2${Math.floor(rand() * 9)}.${String(Math.floor(rand() * 1e5)).padStart(5, '0')}${1 + Math.floor(rand() * 9)}+00`;
  }
}

const commitLsn = (x: number) => `0/${(0x1000 + x * 0x10).toString(16).toUpperCase()}`;

/** Source transactions of random changes, and raw as applying them one by one leaves it (keyed `tenant|key`). */
function workload(rand: () => number, start: Map<string, Row>, transactions: number): { txs: QueuedChange[][]; expected: Map<string, Row> } {
  const model = new Map(start);
  const txs: QueuedChange[][] = [];
  const keyOf = (t: string, k: string) => `${t}|${k}`;
  const upsert = (tenant: string, key: string, row: Row): void => {
    const fresh: Row = { practice_id: tenant, event_id: key, kept: null };
    for (const c of CARRIED) fresh[c] = null;
    model.set(keyOf(tenant, key), { ...(model.get(keyOf(tenant, key)) ?? fresh), ...row });
  };
  for (let x = 0; x < transactions; x++) {
    const lsn = lsnSortKey(commitLsn(x));
    const changes: QueuedChange[] = [];
    const n = 1 + Math.floor(rand() * 12);
    for (let i = 0; i < n; i++) {
      const tenant = TENANTS[Math.floor(rand() * TENANTS.length)]!;
      const key = String(Math.floor(rand() * 12));
      const push = (c: Omit<QueuedChange, 'sourceTable' | 'lsn' | 'seq'>) => changes.push({ sourceTable: spec.label, lsn, seq: changes.length, ...c });
      const r = rand();
      if (r < 0.03) {
        push({ tenant, op: 'truncate', key: [] });
        for (const k of [...model.keys()]) if (k.startsWith(`${tenant}|`)) model.delete(k);
      } else if (r < 0.25) {
        push({ tenant, op: 'delete', key: [key] });
        model.delete(keyOf(tenant, key));
      } else if (r < 0.32) {
        // a move: out of one practice, into another, in one transaction
        const to = TENANTS[Math.floor(rand() * TENANTS.length)]!;
        const row: Row = { practice_id: to, event_id: key };
        for (const c of CARRIED) row[c] = randomValue(rand, c);
        push({ tenant, op: 'delete', key: [key] });
        model.delete(keyOf(tenant, key));
        push({ tenant: to, op: 'upsert', key: [key], row: row as Record<string, string | null> });
        upsert(to, key, row);
      } else {
        // an upsert that leaves out some columns (an unchanged TOASTed value) now and then
        const row: Row = { practice_id: tenant, event_id: key };
        for (const c of CARRIED) if (rand() > 0.25) row[c] = randomValue(rand, c);
        push({ tenant, op: 'upsert', key: [key], row: row as Record<string, string | null> });
        upsert(tenant, key, row);
      }
    }
    txs.push(changes);
  }
  return { txs, expected: model };
}

async function rawRows(wh: Adapter): Promise<Map<string, Row>> {
  const { rows } = await wh.query(
    `SELECT practice_id, CAST(event_id AS VARCHAR) AS event_id, kind, CAST(amount AS VARCHAR) AS amount, note, CAST("at" AS VARCHAR) AS "at", kept FROM raw.events`,
  );
  const out = new Map<string, Row>();
  for (const r of rows) {
    const row: Row = {};
    for (const [k, v] of Object.entries(r)) row[k] = v === null ? null : String(v);
    const k = `${row.practice_id}|${row.event_id}`;
    if (out.has(k)) throw new Error(`raw holds ${k} twice`);
    out.set(k, row);
  }
  return out;
}

const noOltp = {} as OltpSource;

async function prepare(wh: Adapter, start: Map<string, Row>): Promise<LogicalCapture> {
  await migrateMeta(wh, 'tsform_meta');
  await wh.ensureSchema('raw');
  await wh.query(`DROP TABLE IF EXISTS raw.events`);
  // "kept": a column raw has and the stream never carries (the source dropped it)
  await wh.query(`CREATE TABLE raw.events (practice_id VARCHAR, event_id BIGINT, kind VARCHAR, amount DECIMAL(12,2), note VARCHAR, "at" TIMESTAMPTZ, kept VARCHAR)`);
  for (const r of start.values()) {
    await wh.query(`INSERT INTO raw.events VALUES ($1, CAST($2 AS BIGINT), $3, CAST($4 AS DECIMAL(12,2)), $5, CAST($6 AS TIMESTAMPTZ), $7)`, [r.practice_id!, r.event_id!, r.kind!, r.amount!, r.note!, r.at!, r.kept!]);
  }
  await wh.query(`DELETE FROM tsform_meta.logical_queue`);
  await wh.query(`DELETE FROM tsform_meta.deletion_epochs`);
  await wh.transaction((s) => writeSlotRecord(s, 'tsform_meta', SLOT, { lsn: '0/0', tables: [] }));
  return new LogicalCapture({ wh, oltp: noOltp, metaSchema: 'tsform_meta', name: SLOT, tables: [{ spec }], known: TENANTS });
}

function startRows(): Map<string, Row> {
  const out = new Map<string, Row>();
  for (const t of TENANTS) {
    for (let k = 0; k < 6; k++) out.set(`${t}|${k}`, { practice_id: t, event_id: String(k), kind: 'copied', amount: '1.00', note: `c${k}`, at: '2025-01-01 00:00:00.000001+00', kept: `kept-${t}-${k}` });
  }
  return out;
}

const targets: [string, () => Promise<{ wh: Adapter; stop(): Promise<void> }>][] = [
  [
    'duckdb',
    async () => {
      const file = tempDuckdbPath();
      const wh = await openDuckdb(file.path);
      return { wh, stop: async () => (await wh.close(), file.remove()) };
    },
  ],
  [
    'postgres',
    async () => {
      const server: ThrowawayPostgres = await startThrowawayPostgres();
      const wh = await createPostgresAdapter({ url: server.url });
      return { wh, stop: async () => (await wh.close(), await server.stop()) };
    },
  ],
];

describe.each(targets)('the queue applied set-based (%s)', (_name, open) => {
  let wh: Adapter;
  let stop: () => Promise<void>;
  beforeAll(async () => {
    ({ wh, stop } = await open());
  }, 120_000);
  afterAll(async () => {
    await stop?.();
  });

  for (const mode of ['per practice', 'in groups'] as const) {
    it(`equals the changes applied one by one, ${mode}, in batches of 7 (seed ${SEED})`, async () => {
      const rand = prng(SEED + (mode === 'in groups' ? 1 : 0));
      for (let round = 0; round < 3; round++) {
        const start = startRows();
        const lc = await prepare(wh, start);
        const { txs, expected } = workload(rand, start, 40);
        for (const [i, tx] of txs.entries()) await wh.transaction((s) => enqueue(s, 'tsform_meta', SLOT, tx, commitLsn(i)));
        let applied = 0;
        if (mode === 'per practice') {
          for (const t of TENANTS) applied += (await lc.apply(spec, t, { batchRows: 7 })).changes;
        } else {
          const r = await lc.applyAll(spec, undefined, { batchRows: 7 });
          expect(r.failed).toEqual([]);
          applied = r.applied.reduce((a, p) => a + p.changes, 0);
        }
        expect(applied, `round ${round}`).toBe(txs.flat().length);
        const actual = await rawRows(wh);
        expect([...actual.keys()].sort(), `round ${round}`).toEqual([...expected.keys()].sort());
        for (const [k, row] of expected) expect(actual.get(k), `round ${round}: ${k}`).toEqual(row);
        expect(Number((await wh.query(`SELECT count(*) AS n FROM tsform_meta.logical_queue`)).rows[0]!.n)).toBe(0);
        // every practice that lost a row it had counts a deletion epoch
        const lost = TENANTS.filter((t) => [...start.keys()].some((k) => k.startsWith(`${t}|`) && !expected.has(k)));
        const epochs = (await wh.query(`SELECT tenant FROM tsform_meta.deletion_epochs WHERE relation = 'raw.events' AND epoch > 0`)).rows.map((r) => String(r.tenant));
        for (const t of lost) expect(epochs, `round ${round}`).toContain(t);
      }
    }, 120_000);
  }

  it('a practice whose change does not fit raw fails alone: the others are applied, its queue stays', async () => {
    const start = startRows();
    const lc = await prepare(wh, start);
    const good = (tenant: string, key: string): QueuedChange => ({ sourceTable: spec.label, tenant, lsn: lsnSortKey('0/2000'), seq: 0, op: 'upsert', key: [key], row: { practice_id: tenant, event_id: key, amount: '2.50' } });
    const txs: QueuedChange[][] = [
      TENANTS.map((t, i) => ({ ...good(t, '100'), seq: i })),
      [{ ...good('pc', '101'), lsn: lsnSortKey('0/3000'), row: { practice_id: 'pc', event_id: '101', amount: 'not a number' } }],
    ];
    for (const [i, tx] of txs.entries()) await wh.transaction((s) => enqueue(s, 'tsform_meta', SLOT, tx, commitLsn(i)));
    const r = await lc.applyAll(spec);
    expect(r.failed.map((f) => f.tenant)).toEqual(['pc']);
    expect(r.applied.filter((p) => p.changes > 0).map((p) => p.tenant).sort()).toEqual(['pa', 'pb', 'pd']);
    const raw = await rawRows(wh);
    for (const t of ['pa', 'pb', 'pd']) expect(raw.get(`${t}|100`)?.amount).toBe('2.50');
    expect(raw.has('pc|100')).toBe(false);
    const left = await wh.query(`SELECT tenant, count(*) AS n FROM tsform_meta.logical_queue GROUP BY tenant`);
    expect(left.rows.map((x) => `${String(x.tenant)}:${Number(x.n)}`)).toEqual(['pc:2']);
  }, 60_000);

  it('a change carrying a column raw lacks: TSF434 naming it, nothing applied', async () => {
    const lc = await prepare(wh, startRows());
    const tx: QueuedChange[] = [{ sourceTable: spec.label, tenant: 'pa', lsn: lsnSortKey('0/2000'), seq: 0, op: 'upsert', key: ['1'], row: { practice_id: 'pa', event_id: '1', surprise: 'x' } }];
    await wh.transaction((s) => enqueue(s, 'tsform_meta', SLOT, tx, commitLsn(0)));
    await expect(lc.apply(spec, 'pa')).rejects.toMatchObject({ code: Codes.logicalSchemaChange, message: expect.stringContaining('"surprise"') });
    expect(Number((await wh.query(`SELECT count(*) AS n FROM tsform_meta.logical_queue`)).rows[0]!.n)).toBe(1);
  }, 60_000);
});

describe('groups of practices', () => {
  it('smallest queues first; a group holds at most the cap; a practice above it is alone', () => {
    const queued = new Map([
      ['big', 120],
      ['a', 3],
      ['b', 40],
      ['c', 40],
      ['d', 0],
      ['e', 50],
    ]);
    expect(groupPractices(queued, 100)).toEqual([['a', 'b', 'c'], ['e'], ['big']]);
  });

  it('a failing group is split until the failing practice is alone; a statement error fails the group unsplit', async () => {
    const calls: string[] = [];
    const apply = async (ts: readonly string[]) => {
      calls.push(ts.join(','));
      if (ts.includes('c')) throw new Error('bad value');
      return { practices: ts.map((tenant) => ({ tenant, changes: 1, upserted: 1, deleted: 0 })), more: false };
    };
    const r = await applyGroups([['a', 'b', 'c', 'd', 'e']], apply, () => false);
    expect(r.failed.map((f) => f.tenant)).toEqual(['c']);
    expect(r.applied.map((p) => p.tenant).sort()).toEqual(['a', 'b', 'd', 'e']);
    expect(calls).toEqual(['a,b,c,d,e', 'a,b,c', 'a,b', 'c', 'd,e']);
    const unsplit = await applyGroups([['a', 'c']], apply, () => true);
    expect(unsplit.failed.map((f) => f.tenant)).toEqual(['a', 'c']);
  });
});
