import type { ColumnInfo, Session } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import type { OltpReadSession } from './oltp-source.ts';

/** A column of the OLTP table as capture sees it. */
export interface SourceColumn {
  name: string;
  /** PostgreSQL's `format_type`, lower case (`numeric(18,2)`, `timestamp with time zone`). */
  sourceType: string;
  /** The type it gets in raw.* (both warehouse engines accept it). */
  rawType: string;
  nullable: boolean;
  hasDefault: boolean;
  /**
   * The value every row that existed when the column was added has (PostgreSQL keeps a constant
   * default as `attmissingval` instead of rewriting the table), as text; undefined when there is
   * none (a volatile default rewrote every row: only a backfill can tell their values).
   */
  missingValue?: string;
}

/** Columns of `schema.table` in the OLTP, in order; empty when the table does not exist. */
export async function readSourceColumns(r: OltpReadSession, schema: string, table: string): Promise<SourceColumn[]> {
  const { rows } = await r.query(
    `SELECT a.attname AS name, lower(format_type(a.atttypid, a.atttypmod)) AS type, NOT a.attnotnull AS nullable, a.atthasdef AS has_default,
            CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1] END AS missing_value
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [schema, table],
  );
  return rows.map((row) => {
    const sourceType = String(row.type);
    const column: SourceColumn = { name: String(row.name), sourceType, rawType: rawTypeOf(sourceType), nullable: row.nullable === true, hasDefault: row.has_default === true };
    return row.missing_value === null || row.missing_value === undefined ? column : { ...column, missingValue: String(row.missing_value) };
  });
}

/**
 * OLTP type → raw type. Anything without an exact counterpart on both engines (uuid, json,
 * arrays, unbounded numeric, enums) lands as text, which never loses a value.
 */
export function rawTypeOf(pgType: string): string {
  const t = pgType.toLowerCase();
  if (t === 'integer' || t === 'smallint') return 'INTEGER';
  if (t === 'bigint') return 'BIGINT';
  if (t === 'double precision') return 'DOUBLE PRECISION';
  if (t === 'real') return 'REAL';
  if (t === 'boolean') return 'BOOLEAN';
  if (t === 'date') return 'DATE';
  if (t === 'timestamp with time zone') return 'TIMESTAMPTZ';
  if (t === 'timestamp without time zone') return 'TIMESTAMP';
  const dec = /^numeric\((\d+),(\d+)\)$/.exec(t);
  if (dec && Number(dec[1]) <= 38) return `DECIMAL(${dec[1]},${dec[2]})`;
  return 'VARCHAR';
}

/** Warehouse type names (DuckDB or PostgreSQL spelling) in the spelling rawTypeOf uses. */
export function canonicalType(warehouseType: string): string {
  const t = warehouseType.toLowerCase().replace(/\s+/g, ' ').trim();
  if (['varchar', 'text', 'character varying', 'string'].includes(t) || t.startsWith('character varying(') || t.startsWith('varchar(')) return 'VARCHAR';
  if (t === 'integer' || t === 'int' || t === 'int4' || t === 'smallint') return 'INTEGER';
  if (t === 'bigint' || t === 'int8') return 'BIGINT';
  if (t === 'double' || t === 'double precision' || t === 'float8') return 'DOUBLE PRECISION';
  if (t === 'real' || t === 'float' || t === 'float4') return 'REAL';
  if (t === 'boolean' || t === 'bool') return 'BOOLEAN';
  if (t === 'date') return 'DATE';
  if (t === 'timestamp with time zone' || t === 'timestamptz') return 'TIMESTAMPTZ';
  if (t === 'timestamp' || t === 'timestamp without time zone') return 'TIMESTAMP';
  const dec = /^(?:numeric|decimal)\((\d+),\s*(\d+)\)$/.exec(t);
  if (dec) return `DECIMAL(${dec[1]},${dec[2]})`;
  return t.toUpperCase();
}

export interface DriftPlan {
  /** Source columns that raw lacks: added to raw as nullable columns. */
  add: SourceColumn[];
  /**
   * Added columns whose earlier rows have values capture cannot know without reading them again
   * (a volatile default, or NOT NULL set after filling): a backfill is needed. A constant default
   * is not among them: addRawColumns fills raw's earlier rows with it.
   */
  needsBackfill: string[];
}

/**
 * Compares the source's columns with raw's. A column that is new in the source is added; a
 * column that disappeared or changed type is an error naming the table and the column (the
 * rows already in raw could not be kept as they are).
 */
export function planDrift(label: string, source: readonly SourceColumn[], raw: readonly ColumnInfo[]): DriftPlan {
  const bySource = new Map(source.map((c) => [c.name, c]));
  for (const r of raw) {
    const s = bySource.get(r.name);
    if (!s) {
      throw new TsformError(
        Codes.schemaChanged,
        `capture ${label}: column "${r.name}" exists in raw but no longer in the source; restore it in the source or rebuild raw (drop it and backfill every practice)`,
      );
    }
    if (canonicalType(r.type) !== s.rawType) {
      throw new TsformError(
        Codes.schemaChanged,
        `capture ${label}: column "${r.name}" changed type in the source (${s.sourceType} → raw ${s.rawType}, raw has ${canonicalType(r.type)}); rebuild raw (drop it and backfill every practice)`,
      );
    }
  }
  const rawNames = new Set(raw.map((c) => c.name));
  const add = source.filter((c) => !rawNames.has(c.name));
  return { add, needsBackfill: add.filter((c) => (c.hasDefault || !c.nullable) && c.missingValue === undefined).map((c) => c.name) };
}

/**
 * Adds the drift's new columns to raw, in the chunk's transaction, unless the transaction sees
 * them already: another practice's chunk may have added one since raw's columns were read.
 * Returns the columns this transaction added.
 */
export async function addRawColumns(s: Session, rawRelation: { schema: string; table: string }, add: readonly SourceColumn[]): Promise<SourceColumn[]> {
  if (add.length === 0) return [];
  const rel = quoteRelation(rawRelation.schema, rawRelation.table);
  const present = new Set((await s.query(`SELECT * FROM ${rel} LIMIT 0`)).columns);
  const missing = add.filter((c) => !present.has(c.name));
  for (const c of missing) await s.query(`ALTER TABLE ${rel} ADD COLUMN ${quoteIdent(c.name)} ${c.rawType}`);
  // Every row raw holds was captured before the column existed: in the OLTP it has the constant
  // default now (until an update, which capture takes again). One UPDATE after every ALTER:
  // DuckDB 1.5 fails the commit of ALTER, UPDATE, ALTER, UPDATE in one transaction.
  const filled = missing.filter((c) => c.missingValue !== undefined);
  if (filled.length > 0) {
    await s.query(
      `UPDATE ${rel} SET ${filled.map((c, i) => `${quoteIdent(c.name)} = CAST($${i + 1} AS ${c.rawType})`).join(', ')}`,
      filled.map((c) => c.missingValue!),
    );
  }
  return missing;
}
