import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { parse } from 'csv-parse';
import type { Adapter } from '../adapters/adapter.ts';
import { safeType } from '../warehouse/load-csv.ts';
import { quoteIdent, quoteRelation, sqlLiteral } from '../sql/quote.ts';

/** One table of the demo OLTP: a `<table>.csv.gz` extract whose second column is the row id. */
export interface DemoTable {
  table: string;
  /** Row id (the primary key is (practice_id, id)). */
  key: string;
  /** Column types by name (from sources.yml `data_type`); others are text. */
  types: Record<string, string>;
}

export const DEMO_TABLES = ['patients', 'encounters', 'conditions', 'medications', 'procedures', 'claims', 'providers'] as const;

const TO_PG: Record<string, string> = { TIMESTAMPTZ: 'timestamptz', 'DOUBLE PRECISION': 'double precision', DATE: 'date', INTEGER: 'integer', BIGINT: 'bigint' };

/**
 * Loads data/ehr/*.csv.gz into a shared-table OLTP schema on PostgreSQL, as the EHR platform
 * keeps it: every row has practice_id, updated_at and a `deleted_at` soft-delete column; the
 * primary key is (practice_id, id) and (practice_id, updated_at, id) serves capture's keyset
 * reads. A trigger turns a hard DELETE into a soft delete (deleted_at = updated_at = now()),
 * the convention capture relies on to see deletions. Tables are dropped and re-created.
 */
export async function loadDemoOltp(
  oltp: Adapter,
  opts: { dataDir: string; tables: readonly DemoTable[]; schema?: string; tenantColumn?: string },
): Promise<Map<string, number>> {
  const schema = opts.schema ?? 'oltp';
  const tc = opts.tenantColumn ?? 'practice_id';
  await oltp.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
  await oltp.query(SOFT_DELETE_FUNCTION(schema));
  const counts = new Map<string, number>();
  for (const t of opts.tables) {
    const path = join(opts.dataDir, `${t.table}.csv.gz`);
    const records = createReadStream(path).pipe(createGunzip()).pipe(parse({ bom: true, skip_empty_lines: true }));
    const rel = quoteRelation(schema, t.table);
    const loaded = await oltp.transaction(async (s) => {
      let header: string[] | undefined;
      let batch: (string | null)[][] = [];
      let n = 0;
      const load = `__tsf_demo_load_${t.table}`;
      for await (const rec of records as AsyncIterable<string[]>) {
        if (!header) {
          header = rec;
          await s.query(`DROP TABLE IF EXISTS ${rel}`);
          await s.query(
            `CREATE TABLE ${rel} (${header.map((c) => `${quoteIdent(c)} ${pgTypeOf(t, c)}${c === tc || c === t.key || c === 'updated_at' ? ' NOT NULL' : ''}`).join(', ')}, ` +
              `deleted_at timestamptz, PRIMARY KEY (${quoteIdent(tc)}, ${quoteIdent(t.key)}))`,
          );
          await s.query(`CREATE TABLE ${quoteRelation(schema, load)} (${header.map((c) => `${quoteIdent(c)} text`).join(', ')})`);
          continue;
        }
        batch.push(rec.map((v) => (v === '' ? null : v)));
        if (batch.length >= 10_000) {
          await s.insertText(schema, load, header, batch);
          n += batch.length;
          batch = [];
        }
      }
      if (!header) throw new Error(`${path}: empty file`);
      await s.insertText(schema, load, header, batch);
      n += batch.length;
      const cols = header.map(quoteIdent).join(', ');
      // COPY into a text table (insertText's contract), then one typed INSERT.
      await s.query(`INSERT INTO ${rel} (${cols}) SELECT ${header.map((c) => `CAST(${quoteIdent(c)} AS ${pgTypeOf(t, c)})`).join(', ')} FROM ${quoteRelation(schema, load)}`);
      await s.query(`DROP TABLE ${quoteRelation(schema, load)}`);
      await s.query(`CREATE INDEX ${quoteIdent(`${t.table}_capture_idx`)} ON ${rel} (${quoteIdent(tc)}, updated_at, ${quoteIdent(t.key)})`);
      // capture's table-wide sweep for rows moved between practices reads changes in updated_at order
      await s.query(`CREATE INDEX ${quoteIdent(`${t.table}_updated_idx`)} ON ${rel} (updated_at)`);
      await s.query(
        `CREATE TRIGGER ${quoteIdent(`${t.table}_soft_delete`)} BEFORE DELETE ON ${rel} FOR EACH ROW EXECUTE FUNCTION ${quoteRelation(schema, 'tsform_demo_soft_delete')}(${sqlLiteral(tc)}, ${sqlLiteral(t.key)})`,
      );
      return n;
    });
    await oltp.query(`ANALYZE ${rel}`);
    counts.set(t.table, loaded);
  }
  return counts;
}

function pgTypeOf(t: DemoTable, c: string): string {
  const y = t.types[c];
  if (!y) return 'text';
  return TO_PG[y.toUpperCase()] ?? safeType(y);
}

/**
 * BEFORE DELETE: mark the row deleted instead (and bump updated_at so capture sees it). A
 * session that really wants rows gone sets `tsform.hard_delete = on`.
 */
function SOFT_DELETE_FUNCTION(schema: string): string {
  return `CREATE OR REPLACE FUNCTION ${quoteRelation(schema, 'tsform_demo_soft_delete')}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF coalesce(current_setting('tsform.hard_delete', true), '') = 'on' THEN RETURN OLD; END IF;
  EXECUTE format('UPDATE %I.%I SET deleted_at = now(), updated_at = now() WHERE %I::text = $1 AND %I::text = $2',
                 TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[0], TG_ARGV[1])
    USING to_jsonb(OLD) ->> TG_ARGV[0], to_jsonb(OLD) ->> TG_ARGV[1];
  RETURN NULL;
END $fn$`;
}

interface SourcesYmlTable {
  name: string;
  columns?: { name: string; data_type?: string }[];
}

/** The demo tables as models/sources.yml declares them: the id is the column after practice_id. */
export function demoTablesFrom(tables: readonly SourcesYmlTable[], tenantColumn = 'practice_id'): DemoTable[] {
  return tables.map((t) => {
    const cols = t.columns ?? [];
    const key = cols.find((c) => c.name !== tenantColumn && c.name.endsWith('_id'))?.name;
    if (!key) throw new Error(`sources.yml: table ${t.name} has no id column`);
    return { table: t.name, key, types: Object.fromEntries(cols.filter((c) => c.data_type).map((c) => [c.name, c.data_type!])) };
  });
}
