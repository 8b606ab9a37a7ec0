import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresAdapter, type PostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * One writer per practice is enforced in the warehouse: a process whose practice locks are gone
 * (its lock connection ended) must not commit, since another process may hold them by now.
 */
let server: ThrowawayPostgres;
let adapter: PostgresAdapter;
beforeAll(async () => {
  server = await startThrowawayPostgres();
  adapter = await createPostgresAdapter({ url: server.url, poolSize: 3 });
  await adapter.query('CREATE TABLE public.written (practice_id text, n int)');
}, 120_000);
afterAll(async () => {
  await adapter?.close();
  await server?.stop();
});

async function asAdmin<T>(run: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  try {
    return await run(c);
  } finally {
    await c.end();
  }
}

describe('the practice-lock fence at commit', () => {
  it('commits while the locks are held, refuses (TSF412) and writes nothing once their connection is gone', async () => {
    const lock = await adapter.tryLockTenants(['p_a', 'p_b']);
    expect(lock.held).toEqual([]);
    await adapter.transaction((s) => s.query('INSERT INTO public.written VALUES ($1, 1)', ['p_a']));

    // another process can now take the practices: the lock connection was ended under us
    await asAdmin((c) =>
      c.query("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid::int = hashtext('tsform.tenant') AND granted"),
    );
    const thief = await createPostgresAdapter({ url: server.url, poolSize: 2 });
    try {
      const taken = await thief.tryLockTenants(['p_a']);
      expect(taken.held).toEqual([]);
      await expect(adapter.transaction((s) => s.query('INSERT INTO public.written VALUES ($1, 2)', ['p_a']))).rejects.toMatchObject({ code: 'TSF412' });
      await taken.release();
    } finally {
      await thief.close();
    }
    const rows = await adapter.query('SELECT n FROM public.written ORDER BY n');
    expect(rows.rows.map((r) => r.n)).toEqual([1]);
    await lock.release();
    // released: no fence left, writes work again
    await adapter.transaction((s) => s.query('INSERT INTO public.written VALUES ($1, 3)', ['p_a']));
  });
});
