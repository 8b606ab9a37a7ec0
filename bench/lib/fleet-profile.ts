import type { Adapter, Session } from '../../src/adapters/adapter.ts';

/**
 * Wraps an adapter to attribute a run's database time: every statement is timed under a label
 * (its kind: stage, count, delete, insert, describe, …), and each transaction's remainder in
 * three parts: the wait for a connection and BEGIN, Node's work inside the callback (and Session
 * calls not profiled), and COMMIT (which includes DuckDB's automatic checkpoints). Sums are
 * connection-seconds. Used by `BENCH_FLEET_PROFILE=1`.
 */

export interface Profile {
  seconds: Record<string, number>;
  counts: Record<string, number>;
}

export function label(sql: string): string {
  const s = sql.replace(/--[^\n]*\n/g, '').trim();
  if (/^CREATE OR REPLACE TEMPORARY TABLE/i.test(s)) return 'stage (CREATE TEMP TABLE AS model SQL)';
  if (/^SELECT \* FROM "__tsf_stage" LIMIT 0/i.test(s)) return 'probe columns';
  if (/^SELECT .* count\(\*\) AS n FROM "__tsf_stage" GROUP BY/i.test(s)) return 'count rows per practice';
  if (/^SELECT 1 AS present/i.test(s)) return 'slice exists (incremental)';
  if (/^DELETE FROM .* EXISTS/i.test(s)) return 'merge delete (incremental)';
  if (/^DELETE FROM/i.test(s)) return 'delete slice';
  if (/^INSERT INTO/i.test(s)) return 'insert from stage';
  if (/^DROP TABLE IF EXISTS "__tsf_stage"/i.test(s)) return 'drop stage';
  if (/^CREATE TABLE IF NOT EXISTS/i.test(s)) return 'create target';
  if (/information_schema/i.test(s)) return 'describe (information_schema)';
  if (/tsform_meta/i.test(s)) return 'state store / run history';
  return `other: ${s.slice(0, 40).replace(/\s+/g, ' ')}`;
}

export function profileAdapter(inner: Adapter, labelOf: (sql: string) => string = label): { adapter: Adapter; profile: Profile } {
  const profile: Profile = { seconds: {}, counts: {} };
  const add = (key: string, ms: number) => {
    profile.seconds[key] = (profile.seconds[key] ?? 0) + ms / 1000;
    profile.counts[key] = (profile.counts[key] ?? 0) + 1;
  };
  const timed = async <T>(key: string, fn: () => Promise<T>, inner?: { ms: number }): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      const ms = performance.now() - t0;
      add(key, ms);
      if (inner) inner.ms += ms;
    }
  };
  const wrapSession = (s: Session, acc: { ms: number }): Session => ({
    ...s,
    query: (sql, params) => timed(labelOf(sql), () => s.query(sql, params), acc),
    createTempTableAs: (name, sql, params) =>
      timed(name === '__tsf_stage' ? 'stage (CREATE TEMP TABLE AS model SQL)' : `temp table ${name}`, () => s.createTempTableAs(name, sql, params), acc),
    insertText: (schema, table, cols, rows) => timed(`insert text ${table.startsWith('__tsf_') ? table.replace(/_[0-9a-f]{12}$/, '') : table}`, () => s.insertText(schema, table, cols, rows), acc),
  });
  const adapter = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'query') return (sql: string, params?: never[]) => timed(labelOf(sql), () => target.query(sql, params));
      if (prop === 'describe') return (schema: string, name: string) => timed('describe (information_schema)', () => target.describe(schema, name));
      if (prop === 'transaction') {
        return async <T>(fn: (s: Session) => Promise<T>, options?: unknown) => {
          const acc = { ms: 0 };
          const t0 = performance.now();
          let started = t0;
          let ended: number | undefined;
          try {
            return await target.transaction(async (s) => {
              started = performance.now();
              try {
                return await fn(wrapSession(s, acc));
              } finally {
                ended = performance.now();
              }
            }, options as never);
          } finally {
            const end = performance.now();
            // Three parts, so that waiting and Node's own work are not taken for the engine's commit.
            add('transaction: connection wait + BEGIN', started - t0);
            if (ended !== undefined) {
              add('transaction: Node work and unprofiled calls inside', ended - started - acc.ms);
              add('commit (COMMIT incl. checkpoints, or ROLLBACK)', end - ended);
            }
          }
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { adapter, profile };
}
