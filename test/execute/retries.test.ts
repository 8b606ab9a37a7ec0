import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter, Session } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { CancelledError, Codes, TransientError, TsformError } from '../../src/errors.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';

/** In the model's SQL, so that only its build's statements carry it. */
const MARKER = 'retry-probe';
const PRACTICE = 'p_79a06fd69f';

/**
 * The warehouse, with a fault injected into the statement that stages `retry_probe` on its Nth
 * attempt (`faults[n-1]`, nothing once they run out). Counts the attempts.
 */
function faulty(db: Adapter, faults: (Error | undefined)[]): Adapter & { attempts: number } {
  const hit = (sql: string) => {
    if (!sql.includes(MARKER)) return;
    const fault = faults[wrapped.attempts++];
    if (fault) throw fault;
  };
  const session = (s: Session): Session => ({
    query: async (sql, params) => (hit(sql), s.query(sql, params)),
    runScript: (sql) => s.runScript(sql),
    createTempTableAs: async (name, sql, params) => (hit(sql), s.createTempTableAs(name, sql, params)),
    insertText: (schema, table, columns, rows) => s.insertText(schema, table, columns, rows),
    dropTempTable: (name) => s.dropTempTable(name),
    stageCopy: (columns, data) => s.stageCopy(columns, data),
    columnTypeChanges: (schema, name, temp) => s.columnTypeChanges(schema, name, temp),
  });
  const wrapped: Adapter & { attempts: number } = {
    attempts: 0,
    kind: db.kind,
    capabilities: db.capabilities,
    copyStaging: db.copyStaging,
    foldDialect: db.foldDialect,
    transaction: (fn, options) => db.transaction((s) => fn(session(s)), options),
    query: async (sql, params) => (hit(sql), db.query(sql, params)),
    describe: (schema, name) => db.describe(schema, name),
    ensureSchema: (schema) => db.ensureSchema(schema),
    classifyError: (err) => db.classifyError(err),
    isStatementError: (err) => db.isStatementError(err),
    describeError: (err) => db.describeError(err),
    close: async () => undefined,
  };
  return wrapped;
}

describe('the runner retries transient failures only (DESIGN §6)', () => {
  let demo: DemoCopy;
  let db: DuckDBAdapter;
  beforeAll(async () => {
    demo = copyDemoProject({
      tenants: (ids) => ids.filter((id) => id === PRACTICE),
      files: { 'models/marts/retry_probe.sql': `select practice_id, provider_id, '${MARKER}' as probe from {{ref "stg_providers"}}\n` },
    });
    await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+stg_providers'] });
    db = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 2 });
  });
  afterAll(async () => {
    await db?.close();
    demo.remove();
  });

  const probe = async (faults: (Error | undefined)[]) => {
    const adapter = faulty(db, faults);
    const run = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['retry_probe'], adapter });
    const result = run.results.find((r) => r.node === `retry_probe@${PRACTICE}`)!;
    return { result, attempts: adapter.attempts };
  };

  it('a build that throws TransientError once is retried and succeeds', async () => {
    const { result, attempts } = await probe([new TransientError('the moment was wrong')]);
    expect(result).toMatchObject({ status: 'success' });
    expect(result.rows).toBeGreaterThan(0);
    expect(attempts).toBe(2);
  });

  it('an engine error its adapter classifies transient (a DuckDB write conflict) is retried too', async () => {
    const { result, attempts } = await probe([new Error('TransactionContext Error: Conflict on tuple deletion!'), new Error('Conflict on update!')]);
    expect(result).toMatchObject({ status: 'success' });
    expect(attempts).toBe(3);
  });

  it('a transient failure that persists is given up after the configured retries (3), with its own code', async () => {
    const lost = () => new TransientError('connection lost', Codes.connection);
    const { result, attempts } = await probe([lost(), lost(), lost(), lost(), lost()]);
    expect(result).toMatchObject({ status: 'error', code: 'TSF409' });
    expect(attempts).toBe(4);
  });

  it('a permanent TsformError is attempted exactly once', async () => {
    const { result, attempts } = await probe([new TsformError(Codes.sqlError, 'a model failed'), undefined]);
    expect(result).toMatchObject({ status: 'error', code: 'TSF401' });
    expect(result.message).toContain('a model failed');
    expect(attempts).toBe(1);
  });

  it('a statement error of the engine is attempted exactly once', async () => {
    const { result, attempts } = await probe([new Error('Binder Error: Referenced column "nope" not found'), undefined]);
    expect(result).toMatchObject({ status: 'error', code: 'TSF401' });
    expect(attempts).toBe(1);
  });

  it('a cancelled build (the node timeout) is attempted exactly once and reported as TSF411', async () => {
    const { result, attempts } = await probe([new CancelledError('statement interrupted after the node timeout of 10 ms'), undefined]);
    expect(result).toMatchObject({ status: 'error', code: 'TSF411' });
    expect(attempts).toBe(1);
  });
});

describe('a run waits for practices another run holds (one retry policy for lock waits)', () => {
  let demo: DemoCopy;
  let db: DuckDBAdapter;
  beforeAll(async () => {
    demo = copyDemoProject({ tenants: (ids) => ids.filter((id) => id === PRACTICE) });
    db = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 2 });
  });
  afterAll(async () => {
    await db?.close();
    demo.remove();
  });

  it('retries the practice locks until the holder lets go, and tells the caller once', async () => {
    let tries = 0;
    const adapter: Adapter = Object.assign(faulty(db, []), {
      tryLockTenants: async (tenants: readonly string[]) => {
        tries++;
        const held = tries <= 2 ? tenants.map((tenant) => ({ tenant, holder: 'tsform pid 4242' })) : [];
        return { held, release: async () => undefined };
      },
    });
    const waits: string[] = [];
    const run = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+stg_providers'], adapter, onLockWait: (h) => waits.push(h) });
    expect(run.results.filter((r) => r.status !== 'success')).toEqual([]);
    expect(tries).toBe(3);
    expect(waits).toEqual([`practice ${PRACTICE} and 0 more held by tsform pid 4242`]);
  });

  it('a lookup of the locks that fails permanently is not retried', async () => {
    let tries = 0;
    const adapter: Adapter = Object.assign(faulty(db, []), {
      tryLockTenants: async () => {
        tries++;
        throw new TsformError(Codes.connection, 'no lock table');
      },
    });
    await expect(runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+stg_providers'], adapter })).rejects.toThrow('no lock table');
    expect(tries).toBe(1);
  });
});
