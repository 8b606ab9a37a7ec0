import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Adapter } from '../../../src/adapters/adapter.ts';
import { lsnSortKey, type LogicalRelation, type LogicalReplicationSource, type LogicalTransaction, type StreamHandler } from '../../../src/adapters/logical-replication.ts';
import { resolveSpec } from '../../../src/ingest/capture-spec.ts';
import type { OltpSource } from '../../../src/ingest/oltp-source.ts';
import { LogicalCapture } from '../../../src/ingest/logical/logical-capture.ts';
import { enqueue, readSlotRecord, writeSlotRecord } from '../../../src/ingest/logical/queue-writer.ts';
import type { QueuedChange } from '../../../src/ingest/logical/route-changes.ts';
import { consumeStream } from '../../../src/ingest/logical/stream-consumer.ts';
import { migrateMeta } from '../../../src/warehouse/meta-schema.ts';
import { openDuckdb, tempDuckdbPath } from '../support/capture-fixture.ts';

/**
 * A follower stopped (SIGTERM) while a batch of source transactions was being committed to the
 * queue must queue each change once, and the apply must never write a key twice even if a
 * change is in the queue twice. Driven without an OLTP: a scripted stream and a DuckDB warehouse,
 * the stop given at a fixed point inside the queue's commit (no timing).
 */
const META = 'tsform_meta';
const SLOT = 'tsform_stop_test';
const TENANTS = ['pa', 'pb'];
const spec = resolveSpec({ table: 'events', key: ['event_id'], tenantColumn: 'practice_id' });
const relation: LogicalRelation = {
  oid: 1,
  schema: 'oltp',
  table: 'events',
  replicaIdentity: 'default',
  columns: ['practice_id', 'event_id', 'kind'].map((name) => ({ name, typeOid: 25, typeMod: -1, inIdentity: name !== 'kind' })),
};
const noOltp = {} as OltpSource;

/** A replication source that hands `transactions` to the consumer one by one, as the pgoutput adapter does: stop() ends `done` at once, without waiting for a handler in progress. */
function scriptedSource(transactions: LogicalTransaction[]): LogicalReplicationSource {
  return {
    createSlot: () => Promise.reject(new Error('not used')),
    async start(opts: { handler: StreamHandler }) {
      let stopped = false;
      let resolveDone!: () => void;
      let rejectDone!: (err: unknown) => void;
      const done = new Promise<void>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
      done.catch(() => undefined);
      setImmediate(() => {
        void (async () => {
          for (const tx of transactions) {
            if (stopped) return;
            await opts.handler.onTransaction(tx);
          }
        })().catch((err: unknown) => {
          stopped = true;
          rejectDone(err);
        });
      });
      return {
        confirm: () => undefined,
        ping: () => undefined,
        stop: async () => {
          stopped = true;
          resolveDone();
        },
        done,
      };
    },
  };
}

function insertTx(commitEndLsn: string, tenant: string, keys: number[], kind: string): LogicalTransaction {
  return { commitEndLsn, relations: [], changes: keys.map((k) => ({ op: 'insert', relation, new: { practice_id: tenant, event_id: String(k), kind } })) };
}

async function queueRows(wh: Adapter): Promise<number> {
  return Number((await wh.query(`SELECT count(*) AS n FROM ${META}.logical_queue`)).rows[0]!.n);
}

async function rawKeys(wh: Adapter): Promise<string[]> {
  const { rows } = await wh.query(`SELECT practice_id || '|' || CAST(event_id AS VARCHAR) || '|' || kind AS k FROM raw.events ORDER BY 1`);
  return rows.map((r) => String(r.k));
}

describe('a stop while the queue commits (duckdb)', () => {
  let wh: Adapter;
  let file: ReturnType<typeof tempDuckdbPath>;
  beforeAll(async () => {
    file = tempDuckdbPath();
    wh = await openDuckdb(file.path);
    await migrateMeta(wh, META);
    await wh.ensureSchema('raw');
  }, 60_000);
  afterAll(async () => {
    await wh?.close();
    file?.remove();
  });
  beforeEach(async () => {
    await wh.query(`DROP TABLE IF EXISTS raw.events`);
    await wh.query(`CREATE TABLE raw.events (practice_id VARCHAR, event_id BIGINT, kind VARCHAR)`);
    await wh.query(`INSERT INTO raw.events VALUES ('pa', 1, 'copied'), ('pb', 1, 'copied')`);
    await wh.query(`DELETE FROM ${META}.logical_queue`);
    await wh.transaction((s) => writeSlotRecord(s, META, SLOT, { lsn: '0/1000', tables: [spec.label] }));
  });

  it('SIGTERM inside the commit of a batch: every change is queued once and raw holds each key once', async () => {
    const ac = new AbortController();
    let commits = 0;
    const r = await consumeStream({
      wh,
      oltp: noOltp,
      replication: scriptedSource([insertTx('0/2000', 'pa', [1, 2, 3], 'streamed'), insertTx('0/3000', 'pb', [1, 2], 'streamed')]),
      metaSchema: META,
      slot: SLOT,
      publication: SLOT,
      tables: new Map([[spec.label, spec]]),
      known: new Set(TENANTS),
      startLsn: '0/1000',
      signal: ac.signal,
      // one warehouse commit per source transaction
      batchMs: 0,
      beforeCommit: async () => {
        commits++;
        if (commits > 1) return;
        // the stop arrives while the first batch's queue rows are written, before its COMMIT:
        // everything the stop sets off (stream stopped, the final commit of what is pending)
        // runs before this commit goes on
        ac.abort();
        for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
      },
    });
    // the first transaction was received whole and committed once (no second commit of the same
    // batch); the second never came (the stream stopped)
    expect(commits).toBe(1);
    expect(await queueRows(wh)).toBe(3);
    const dupes = await wh.query(`SELECT lsn, seq, count(*) AS n FROM ${META}.logical_queue GROUP BY lsn, seq HAVING count(*) > 1`);
    expect(dupes.rows).toEqual([]);
    expect(r.lsn).toBe('0/2000');
    expect((await readSlotRecord(wh, META, SLOT))!.lsn).toBe('0/2000');
    const lc = new LogicalCapture({ wh, oltp: noOltp, metaSchema: META, name: SLOT, tables: [{ spec }], known: TENANTS });
    const applied = await lc.applyAll(spec);
    expect(applied.failed).toEqual([]);
    expect(await rawKeys(wh)).toEqual(['pa|1|streamed', 'pa|2|streamed', 'pa|3|streamed', 'pb|1|copied']);
  }, 60_000);

  it('a batch committed again (a retry after a COMMIT that succeeded): the queue keeps one copy, the stored LSN does not go back', async () => {
    const batch = (lsn: string, keys: number[]): QueuedChange[] => keys.map((k, seq) => ({ sourceTable: spec.label, tenant: 'pa', lsn: lsnSortKey(lsn), seq, op: 'upsert', key: [String(k)], row: { practice_id: 'pa', event_id: String(k), kind: `at ${lsn}` } }));
    await wh.transaction((s) => enqueue(s, META, SLOT, batch('0/2000', [1, 2]), '0/2000'));
    await wh.transaction((s) => enqueue(s, META, SLOT, batch('0/3000', [2, 3]), '0/3000'));
    // the same batches once more, the older one last
    await wh.transaction((s) => enqueue(s, META, SLOT, batch('0/3000', [2, 3]), '0/3000'));
    await wh.transaction((s) => enqueue(s, META, SLOT, batch('0/2000', [1, 2]), '0/2000'));
    expect(await queueRows(wh)).toBe(4);
    expect((await readSlotRecord(wh, META, SLOT))!.lsn).toBe('0/3000');
  }, 60_000);

  it('a change in the queue twice (same table, lsn and seq) is applied once', async () => {
    const lsn = lsnSortKey('0/2000');
    const rows = [
      ['pa', 0, 'upsert', '1', 'new'],
      ['pa', 1, 'upsert', '4', 'new'],
      ['pb', 2, 'delete', '1', null],
    ] as const;
    for (let copy = 0; copy < 2; copy++) {
      for (const [tenant, seq, op, key, kind] of rows) {
        await wh.query(`INSERT INTO ${META}.logical_queue VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
          spec.label,
          tenant,
          lsn,
          seq,
          op,
          JSON.stringify([key]),
          op === 'upsert' ? JSON.stringify({ practice_id: tenant, event_id: key, kind }) : null,
        ]);
      }
    }
    const lc = new LogicalCapture({ wh, oltp: noOltp, metaSchema: META, name: SLOT, tables: [{ spec }], known: TENANTS });
    const applied = await lc.applyAll(spec);
    expect(applied.failed).toEqual([]);
    expect(await rawKeys(wh)).toEqual(['pa|1|new', 'pa|4|new']);
    expect(await queueRows(wh)).toBe(0);
  }, 60_000);
});
