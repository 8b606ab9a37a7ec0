import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { asSuperuser } from '../support/rls-fixture.ts';

/**
 * Compile reads SQL with libpg-query, whose string literals follow standard_conforming_strings =
 * on. A server where it is off (a database or role default) ends `'a\'` elsewhere, so a script
 * that parses as comment, statement, comment runs as one comment and whatever follows it. Before
 * tsform's sessions set it on, a policies/protect_table.hbs of that shape passed the template
 * guard and, applied on such a server, disabled row-level security on 18 of the demo's relations
 * and granted them to PUBLIC (measured with a throwaway warehouse; the guard now also refuses a
 * backslash in an override, policy-templates.test.ts). This checks the session itself.
 */

let server: ThrowawayPostgres;
beforeAll(async () => {
  server = await startThrowawayPostgres();
  await asSuperuser(server.url, async (c) => {
    const db = String((await c.query('SELECT current_database() AS d')).rows[0]?.d);
    await c.query(`ALTER DATABASE "${db}" SET standard_conforming_strings = off`);
    await c.query('CREATE TABLE t (a int)');
  });
}, 600_000);
afterAll(async () => {
  await server?.stop();
});

describe('a tsform session on a database whose default is standard_conforming_strings = off', () => {
  it('reads string literals as libpg-query does: a script runs the statements the parser saw', async () => {
    const plain = await asSuperuser(server.url, async (c) => String((await c.query('SHOW standard_conforming_strings')).rows[0]?.standard_conforming_strings));
    expect(plain).toBe('off');
    const adapter = await PostgresAdapter.open({ url: server.url, poolSize: 1 });
    try {
      await adapter.transaction(async (s) => {
        expect((await s.query('SHOW standard_conforming_strings')).rows[0]?.standard_conforming_strings).toBe('on');
        await s.runScript(`COMMENT ON TABLE public.t IS 'a\\';\nCREATE TABLE public.seen_by_the_parser (a int);\nCOMMENT ON TABLE public.t IS '; CREATE TABLE public.hidden_from_the_parser (a int); --';\n`);
      });
    } finally {
      await adapter.close();
    }
    const made = await asSuperuser(server.url, (c) => c.query(`SELECT relname FROM pg_class WHERE relname IN ('seen_by_the_parser', 'hidden_from_the_parser') ORDER BY 1`));
    expect(made.rows.map((r) => r.relname)).toEqual(['seen_by_the_parser']);
  });
});
