import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { Adapter } from '../../../src/adapters/adapter.ts';
import type { OltpReadSession, OltpSource } from '../../../src/adapters/oltp-source.ts';
import { createPostgresAdapter, type PostgresAdapter } from '../../../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../../../src/adapters/postgres/pg-oltp-source.ts';
import { loadDemoOltp } from '../../../src/ingest/demo-oltp.ts';
import { REPO_ROOT } from '../../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayOptions, type ThrowawayPostgres } from '../../support/postgres.ts';
import { demoTables, openDuckdb, sliceChecksums, startOltpTemplate, type OltpTemplate } from './capture-fixture.ts';

const FIXTURE = fileURLToPath(new URL('../../fixtures/capture-project/', import.meta.url));

/** The throwaway OLTP with only the tables the capture-project fixture reads. */
export interface SmallOltp {
  server: ThrowawayPostgres;
  admin: PostgresAdapter;
  stop(): Promise<void>;
}

export async function startSmallOltp(tables = ['encounters', 'procedures'], server_: ThrowawayOptions = {}): Promise<SmallOltp> {
  const server = await startThrowawayPostgres(server_);
  const admin = await createPostgresAdapter({ url: server.url });
  await loadDemoOltp(admin, { dataDir: join(REPO_ROOT, 'data/ehr'), tables: demoTables().filter((t) => tables.includes(t.table)) });
  return {
    server,
    admin,
    async stop() {
      await admin.close().catch(() => undefined);
      await server.stop();
    },
  };
}

/** A copy of test/fixtures/capture-project with these practices in tenants.yml. */
export function copyCaptureProject(tenants: readonly string[]): { dir: string; setTenants(ids: readonly string[]): void; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tsform-capture-project-'));
  cpSync(FIXTURE, dir, { recursive: true });
  const setTenants = (ids: readonly string[]) =>
    writeFileSync(join(dir, 'tenants.yml'), stringify({ tenants: ids.map((id) => ({ id, name: `Practice ${id}`, timezone: 'America/New_York', pool: 'steady' })) }));
  setTenants(tenants);
  return { dir, setTenants, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Opens the project's DuckDB warehouse for one look (runs close theirs when they end). */
export async function withWarehouse<T>(dir: string, fn: (wh: Adapter) => Promise<T>): Promise<T> {
  const wh = await openDuckdb(join(dir, 'target/tsform.duckdb'));
  try {
    return await fn(wh);
  } finally {
    await wh.close();
  }
}

/** OLTP live rows vs raw, per practice, for one table: the practices whose checksums differ. */
export async function rawDiffers(oltp: Adapter, wh: Adapter, table: string, tenants: readonly string[]): Promise<string[]> {
  const cols = (await wh.describe('raw', table))!.columns.map((c) => c.name);
  const list = tenants.map((t) => `'${t}'`).join(',');
  const a = await sliceChecksums(oltp, { schema: 'oltp', table }, cols, `deleted_at IS NULL AND practice_id IN (${list})`);
  const b = await sliceChecksums(wh, { schema: 'raw', table }, cols, `practice_id IN (${list})`);
  return tenants.filter((t) => a.get(t) !== b.get(t)).map((t) => `${table}@${t}: oltp ${a.get(t) ?? '-'} raw ${b.get(t) ?? '-'}`);
}

/** Opens the OLTP like the CLI does, but from a URL given here. */
export function openOltpAt(url: string): () => Promise<OltpSource> {
  return () => PgOltpSource.open(url);
}

/**
 * The OLTP with faults for some practices, keyed on the practice id capture binds for its
 * extract (alone, or among the practices of a batch read together): `timeout` sleeps past the statement timeout, `disconnect` kills the session (a real
 * connection loss), `slow` reads 1.2 s late. Other practices read normally.
 */
export function withFaults(inner: OltpSource, faults: Record<string, 'timeout' | 'disconnect' | 'slow'>): OltpSource {
  return afterEachRead(inner, async (s, sql, params) => {
    // a read binds its practice, or a batch read the array of its practices
    const bound = (params ?? []).flatMap((p) => (Array.isArray(p) ? p : [p])).map(String);
    const fault = sql.includes('set_config') ? bound.map((t) => faults[t]).find((f) => f !== undefined) : undefined;
    if (fault === 'timeout') await s.query('SELECT pg_sleep(10)');
    if (fault === 'disconnect') await s.query('SELECT pg_terminate_backend(pg_backend_pid())');
    // within the fixture's 2 s statement timeout: the read succeeds, late
    if (fault === 'slow') await s.query('SELECT pg_sleep(1.2)');
  });
}

/** The OLTP source with `hook` run after each query of its read transactions, in the same session. */
export function afterEachRead(inner: OltpSource, hook: (s: OltpReadSession, sql: string, params: readonly unknown[] | undefined) => Promise<void>): OltpSource {
  return {
    query: (sql, params) => inner.query(sql, params),
    close: () => inner.close(),
    classifyError: (err) => inner.classifyError(err),
    readTransaction: (fn, options) =>
      inner.readTransaction(
        (s) =>
          fn({
            copyOut: (sql, format) => s.copyOut(sql, format),
            async query(sql, params) {
              const r = await s.query(sql, params);
              await hook(s, sql, params);
              return r;
            },
          }),
        options,
      ),
  };
}

/**
 * An OLTP template holding only the first `count` practices (by id) of the capture project's
 * tables, so that counts of unknown practices are exact; returns it with those practice ids.
 */
export async function templateOfFirstPractices(count: number, tables = ['encounters', 'procedures'], server?: ThrowawayOptions): Promise<{ template: OltpTemplate; tenants: string[] }> {
  let tenants: string[] = [];
  const template = await startOltpTemplate({
    tables,
    server,
    prepare: async (admin) => {
      tenants = (await admin.query(`SELECT practice_id FROM oltp.encounters GROUP BY 1 ORDER BY 1 LIMIT ${Math.floor(count)}`)).rows.map((r) => String(r.practice_id));
      await admin.transaction(async (s) => {
        await s.query(`SELECT set_config('tsform.hard_delete', 'on', true)`);
        for (const t of tables) await s.query(`DELETE FROM oltp.${t} WHERE NOT (practice_id = ANY($1::text[]))`, [tenants]);
      });
    },
  });
  return { template, tenants };
}
