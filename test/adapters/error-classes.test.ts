import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorClass } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { classifyIfPgError, classifyPgError, isPgStatementError, pgFailureCode } from '../../src/adapters/pg-errors.ts';
import { CancelledError, Codes, TransientError, TsformError } from '../../src/errors.ts';

/**
 * One classifier per engine: what each engine's errors mean for a retry (transient / permanent /
 * cancelled), and which ones fail for every practice of a batch. PostgreSQL's classifier is pure
 * (SQLSTATEs), so it is asked here without a server; test/adapters/postgres-adapter.test.ts
 * classifies real errors of a live server with the adapter itself.
 */

const pgError = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

interface Case {
  what: string;
  err: unknown;
  errorClass: ErrorClass;
  everyPractice: boolean;
}

/** tsform's own errors classify by their class, whatever the engine. */
const OWN: Case[] = [
  { what: 'TransientError', err: new TransientError('a practice another run holds', Codes.tenantLocked), errorClass: 'transient', everyPractice: false },
  { what: 'CancelledError', err: new CancelledError('node timeout'), errorClass: 'cancelled', everyPractice: false },
  { what: 'TsformError', err: new TsformError(Codes.sqlError, 'Binder Error: a message that looks like the engine'), errorClass: 'permanent', everyPractice: false },
  { what: 'not an error', err: 'just a string', errorClass: 'permanent', everyPractice: false },
  { what: 'undefined', err: undefined, errorClass: 'permanent', everyPractice: false },
];

describe('DuckDB classifier', () => {
  let db: DuckDBAdapter;
  beforeAll(async () => {
    db = await DuckDBAdapter.open({ path: ':memory:', connections: 2 });
    await db.query('CREATE TABLE t (id INTEGER, v INTEGER)');
    await db.query('INSERT INTO t VALUES (1, 0)');
  });
  afterAll(async () => db.close());

  const cases: Case[] = [
    ...OWN,
    { what: 'conflict on tuple deletion', err: new Error('TransactionContext Error: Conflict on tuple deletion!'), errorClass: 'transient', everyPractice: false },
    { what: 'failed commit', err: new Error('TransactionContext Error: Failed to commit: write-write conflict'), errorClass: 'transient', everyPractice: false },
    { what: 'file lock', err: new Error('IO Error: Could not set lock on file "x.duckdb": Conflicting lock is held in node (PID 1)'), errorClass: 'transient', everyPractice: false },
    { what: 'interrupt', err: new Error('INTERRUPT Error: Interrupted!'), errorClass: 'cancelled', everyPractice: false },
    {
      what: 'a key another transaction inserted',
      err: new Error('Constraint Error: Duplicate key "relation: raw.x, tenant: p_1, source: raw.x" violates primary key constraint.'),
      errorClass: 'transient',
      everyPractice: false,
    },
    { what: 'not null', err: new Error('Constraint Error: NOT NULL constraint failed: t.id'), errorClass: 'permanent', everyPractice: false },
    { what: 'binder error', err: new Error('Binder Error: Referenced column "nope" not found'), errorClass: 'permanent', everyPractice: true },
    { what: 'catalog error', err: new Error('Catalog Error: Table with name nope does not exist!'), errorClass: 'permanent', everyPractice: true },
    { what: 'parser error', err: new Error('Parser Error: syntax error at or near "selec"'), errorClass: 'permanent', everyPractice: true },
    { what: 'conversion error', err: new Error('Conversion Error: Could not convert string to INT32'), errorClass: 'permanent', everyPractice: false },
  ];
  for (const c of cases) {
    it(`${c.what}: ${c.errorClass}${c.everyPractice ? ', fails for every practice' : ''}`, () => {
      expect(db.classifyError(c.err)).toBe(c.errorClass);
      expect(db.isStatementError(c.err)).toBe(c.everyPractice);
    });
  }

  it('real errors of the engine: two transactions inserting one key conflict (transient)', async () => {
    await db.query('CREATE TABLE k (id INTEGER PRIMARY KEY)');
    const dup = await rejection(
      db.transaction(async (a) => {
        await a.query('INSERT INTO k VALUES (1)');
        await db.transaction((b) => b.query('INSERT INTO k VALUES (1)'));
      }),
    );
    expect([db.classifyError(dup), db.isStatementError(dup)]).toEqual(['transient', false]);
  });

  it('real errors of the engine: a binder error, a write-write conflict, a statement stopped at the timeout', async () => {
    const binder = await rejection(db.query('SELECT nope FROM t'));
    expect([db.classifyError(binder), db.isStatementError(binder)]).toEqual(['permanent', true]);

    const conflict = await rejection(
      db.transaction(async (a) => {
        await a.query('UPDATE t SET v = v + 1 WHERE id = 1');
        await db.transaction((b) => b.query('UPDATE t SET v = v + 10 WHERE id = 1'));
      }),
    );
    expect((conflict as Error).message).toMatch(/Conflict/);
    expect([db.classifyError(conflict), db.isStatementError(conflict)]).toEqual(['transient', false]);

    const timeout = await rejection(db.transaction((s) => s.query('SELECT count(*) FROM range(100000000000)'), { timeoutMs: 50 }));
    expect(timeout).toBeInstanceOf(CancelledError);
    expect((timeout as TsformError).code).toBe('TSF411');
    expect(db.classifyError(timeout)).toBe('cancelled');
  });
});

describe('PostgreSQL classifier', () => {
  const cases: Case[] = [
    ...OWN,
    { what: '40001 serialization_failure', err: pgError('40001'), errorClass: 'transient', everyPractice: false },
    { what: '40P01 deadlock_detected', err: pgError('40P01'), errorClass: 'transient', everyPractice: false },
    { what: '08006 connection_failure', err: pgError('08006'), errorClass: 'transient', everyPractice: false },
    { what: '57P01 admin_shutdown', err: pgError('57P01'), errorClass: 'transient', everyPractice: false },
    { what: 'ECONNRESET', err: pgError('ECONNRESET'), errorClass: 'transient', everyPractice: false },
    { what: 'a refused dual-stack connect', err: new AggregateError([pgError('ECONNREFUSED')], 'connect failed'), errorClass: 'transient', everyPractice: false },
    { what: 'a closed socket', err: new Error('Connection terminated unexpectedly'), errorClass: 'transient', everyPractice: false },
    { what: 'two sessions creating one table', err: pgError('42P07', 'relation "x" already exists'), errorClass: 'transient', everyPractice: true },
    { what: '57014 query_canceled', err: pgError('57014', 'canceling statement due to statement timeout'), errorClass: 'cancelled', everyPractice: false },
    { what: '42P01 undefined_table', err: pgError('42P01'), errorClass: 'permanent', everyPractice: true },
    { what: '42601 syntax_error', err: pgError('42601'), errorClass: 'permanent', everyPractice: true },
    { what: '22P02 invalid_text_representation', err: pgError('22P02'), errorClass: 'permanent', everyPractice: false },
    { what: '23505 unique_violation', err: pgError('23505'), errorClass: 'permanent', everyPractice: false },
  ];
  for (const c of cases) {
    it(`${c.what}: ${c.errorClass}${c.everyPractice ? ', fails for every practice' : ''}`, () => {
      expect(classifyPgError(c.err)).toBe(c.errorClass);
      expect(isPgStatementError(c.err)).toBe(c.everyPractice);
    });
  }

  it('gives capture its codes: a cancelled read TSF411, a lost connection TSF409, else none', () => {
    expect(pgFailureCode(pgError('57014'))).toBe('TSF411');
    for (const err of [pgError('08006'), pgError('57P01'), pgError('ENOTFOUND'), new Error('Connection terminated due to connection timeout')]) {
      expect(pgFailureCode(err)).toBe('TSF409');
    }
    for (const err of [pgError('40001'), pgError('42P01'), new Error('x')]) expect(pgFailureCode(err)).toBeUndefined();
  });

  it('as the OLTP classifier, claims only PostgreSQL driver and socket errors: any other (a DuckDB warehouse’s) is left to the warehouse', async () => {
    const notPg = new Set(['not an error', 'undefined']);
    for (const c of cases) expect(classifyIfPgError(c.err), c.what).toBe(notPg.has(c.what) ? undefined : c.errorClass);
    const db = await DuckDBAdapter.open({ path: ':memory:' });
    try {
      const binder = await rejection(db.query('SELECT no_such_column FROM (SELECT 1 AS a)'));
      expect(classifyIfPgError(binder)).toBeUndefined();
      expect(classifyIfPgError(new Error('TransactionContext Error: Catalog write-write conflict'))).toBeUndefined();
    } finally {
      await db.close();
    }
  });
});
