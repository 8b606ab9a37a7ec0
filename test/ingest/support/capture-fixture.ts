import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { Adapter } from '../../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter, type PostgresAdapter } from '../../../src/adapters/postgres/postgres-adapter.ts';
import type { CaptureSpec } from '../../../src/ingest/capture.ts';
import { demoTablesFrom, loadDemoOltp, type DemoTable } from '../../../src/ingest/demo-oltp.ts';
import { quoteIdent, quoteRelation } from '../../../src/sql/quote.ts';
import { REPO_ROOT } from '../../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayOptions, type ThrowawayPostgres } from '../../support/postgres.ts';
import { PgOltpSource } from '../../../src/adapters/postgres/pg-oltp-source.ts';

export function demoTables(): DemoTable[] {
  const doc = parse(readFileSync(join(REPO_ROOT, 'models/sources.yml'), 'utf8')) as {
    sources: { name: string; tables: { name: string; columns?: { name: string; data_type?: string }[] }[] }[];
  };
  return demoTablesFrom(doc.sources.find((s) => s.name === 'ehr')!.tables);
}

export function demoSpecs(): CaptureSpec[] {
  return demoTables().map((t) => ({ table: t.table, key: [t.key], tenantColumn: 'practice_id' }));
}

export function demoTenantIds(): string[] {
  const doc = parse(readFileSync(join(REPO_ROOT, 'tenants.yml'), 'utf8')) as { tenants: { id: string }[] };
  return doc.tenants.map((t) => t.id);
}

export interface OltpFixture {
  server: ThrowawayPostgres;
  /** Superuser URL of this OLTP's database. */
  url: string;
  /** The OLTP through the tsform adapter (normalized values, for checksums and edits). */
  admin: PostgresAdapter;
  source: PgOltpSource;
  stop(): Promise<void>;
}

/** A server of its own with the demo OLTP (all tables) loaded: for a file with one case. */
export async function startDemoOltp(serverOptions: ThrowawayOptions = {}): Promise<OltpFixture> {
  const server = await startThrowawayPostgres(serverOptions);
  const admin = await createPostgresAdapter({ url: server.url });
  await loadDemoOltp(admin, { dataDir: join(REPO_ROOT, 'data/ehr'), tables: demoTables() });
  const source = await PgOltpSource.open(server.url);
  return {
    server,
    url: server.url,
    admin,
    source,
    async stop() {
      await source.close().catch(() => undefined);
      await admin.close().catch(() => undefined);
      await server.stop();
    },
  };
}

/**
 * The demo OLTP loaded once into a template database; `fresh()` clones it for one test case
 * (CREATE DATABASE … TEMPLATE, a file copy), so that cases share no rows and no schema changes,
 * and each passes alone and in any order.
 */
export interface OltpTemplate {
  fresh(): Promise<OltpFixture>;
  /** Stops the server, with every clone. */
  stop(): Promise<void>;
}

export async function startOltpTemplate(opts: { tables?: readonly string[]; prepare?: (admin: PostgresAdapter) => Promise<void>; server?: ThrowawayOptions } = {}): Promise<OltpTemplate> {
  const server = await startThrowawayPostgres(opts.server);
  const template = await server.createDatabase();
  const loader = await createPostgresAdapter({ url: template.url });
  try {
    const tables = demoTables().filter((t) => !opts.tables || opts.tables.includes(t.table));
    await loadDemoOltp(loader, { dataDir: join(REPO_ROOT, 'data/ehr'), tables });
    await opts.prepare?.(loader);
  } finally {
    // no session may stay on a template while it is cloned
    await loader.close();
  }
  return {
    async fresh() {
      const db = await server.createDatabase({ template: template.name });
      const admin = await createPostgresAdapter({ url: db.url });
      const source = await PgOltpSource.open(db.url);
      return {
        server,
        url: db.url,
        admin,
        source,
        async stop() {
          await source.close().catch(() => undefined);
          await admin.close().catch(() => undefined);
          await db.drop();
        },
      };
    },
    stop: () => server.stop(),
  };
}

export function tempDuckdbPath(): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tsform-capture-'));
  return { path: join(dir, 'warehouse.duckdb'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function openDuckdb(path: string): Promise<DuckDBAdapter> {
  return DuckDBAdapter.open({ path, connections: 2 });
}

/**
 * Per practice: row count and an order-independent sum of row hashes. Rows are read through the
 * adapters, which normalize values the same way on both engines; each row hashes as the JSON of
 * its values in column order.
 */
export async function sliceChecksums(db: Adapter, relation: { schema: string; table: string }, columns: readonly string[], where = ''): Promise<Map<string, string>> {
  const { rows } = await db.query(
    `SELECT ${columns.map(quoteIdent).join(', ')} FROM ${quoteRelation(relation.schema, relation.table)}${where ? ` WHERE ${where}` : ''}`,
  );
  const acc = new Map<string, { n: number; sum: bigint }>();
  for (const r of rows) {
    const tenant = String(r.practice_id);
    const h = createHash('md5').update(JSON.stringify(columns.map((c) => normalize(r[c])))).digest('hex');
    const a = acc.get(tenant) ?? { n: 0, sum: 0n };
    a.n++;
    a.sum += BigInt(`0x${h.slice(0, 15)}`);
    acc.set(tenant, a);
  }
  return new Map([...acc].sort(([x], [y]) => (x < y ? -1 : 1)).map(([t, a]) => [t, `${a.n}:${a.sum.toString(16)}`]));
}

function normalize(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number' && !Number.isInteger(v)) return v.toPrecision(15);
  return v ?? null;
}

/** OLTP (live rows) vs raw, per practice, for every demo table: the tables whose checksums differ. */
export async function compareAll(oltp: Adapter, wh: Adapter, tenants: ReadonlySet<string>): Promise<string[]> {
  const diffs: string[] = [];
  for (const t of demoTables()) {
    const info = await wh.describe('raw', t.table);
    const cols = info!.columns.map((c) => c.name);
    const known = [...tenants].map((x) => `'${x.replaceAll("'", "''")}'`).join(',');
    const a = await sliceChecksums(oltp, { schema: 'oltp', table: t.table }, cols, `deleted_at IS NULL AND practice_id IN (${known})`);
    const b = await sliceChecksums(wh, { schema: 'raw', table: t.table }, cols);
    const all = new Set([...a.keys(), ...b.keys()]);
    for (const p of all) if (a.get(p) !== b.get(p)) diffs.push(`${t.table}@${p}: oltp ${a.get(p) ?? '-'} raw ${b.get(p) ?? '-'}`);
  }
  return diffs;
}
