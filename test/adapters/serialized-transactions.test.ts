import { describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { twoEngines } from '../support/two-engines.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs a transaction that records when its body starts and ends. */
function recorded(wh: Adapter, log: string[], name: string, key: string | undefined, body: () => Promise<void> = () => sleep(150)) {
  return wh.transaction(
    async (s) => {
      await s.query('SELECT 1 AS one');
      log.push(`${name} start`);
      await body();
      log.push(`${name} end`);
    },
    key === undefined ? {} : { serializeOn: key },
  );
}

describe.each(twoEngines('serialize'))('TransactionOptions.serializeOn on $name', (engine) => {
  it('transactions of one key never overlap; the later one reads what the earlier committed', async () => {
    const wh = engine.adapter();
    // schema-qualified: tsform's PostgreSQL sessions search pg_catalog only (session-options.ts)
    await wh.query('CREATE SCHEMA IF NOT EXISTS serial_test');
    await wh.query('CREATE TABLE serial_test.serialized_rows (n INTEGER)');
    const log: string[] = [];
    const seen: number[] = [];
    const run = (n: number) =>
      wh.transaction(
        async (s) => {
          // each reads the count, waits, then writes: overlapping snapshots would read the same count
          const before = Number((await s.query('SELECT count(*) AS n FROM serial_test.serialized_rows')).rows[0]!.n);
          log.push(`t${n} start`);
          await sleep(100);
          await s.query('INSERT INTO serial_test.serialized_rows VALUES ($1)', [n]);
          seen.push(before);
          log.push(`t${n} end`);
        },
        { serializeOn: 'rows' },
      );
    await Promise.all([run(1), run(2), run(3)]);
    expect(seen).toEqual([0, 1, 2]);
    for (let i = 0; i < log.length; i += 2) expect(log[i + 1]!.replace('end', 'start')).toBe(log[i]);
  });

  it('a transaction that fails ends its turn: the next one runs', async () => {
    const wh = engine.adapter();
    const log: string[] = [];
    let holds!: () => void;
    const aHoldsTheTurn = new Promise<void>((resolve) => (holds = resolve));
    const failing = recorded(wh, log, 'a', 'k', async () => {
      holds();
      await sleep(50);
      throw new Error('boom');
    });
    // b asks for the turn only once a has it: two transactions started together may take it in
    // either order (on PostgreSQL, whichever pool connection locks first)
    await aHoldsTheTurn;
    const next = recorded(wh, log, 'b', 'k');
    await expect(failing).rejects.toThrow('boom');
    await next;
    expect(log).toEqual(['a start', 'b start', 'b end']);
  });

  it('other keys, and transactions without one, run beside it', async () => {
    const wh = engine.adapter();
    const log: string[] = [];
    await Promise.all([recorded(wh, log, 'a', 'k1', () => sleep(300)), sleep(50).then(() => recorded(wh, log, 'b', 'k2', () => sleep(10)))]);
    expect(log).toEqual(['a start', 'b start', 'b end', 'a end']);
    log.length = 0;
    await Promise.all([recorded(wh, log, 'a', 'k1', () => sleep(300)), sleep(50).then(() => recorded(wh, log, 'b', undefined, () => sleep(10)))]);
    expect(log).toEqual(['a start', 'b start', 'b end', 'a end']);
  });
});
