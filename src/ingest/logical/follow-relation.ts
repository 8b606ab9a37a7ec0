import type { Adapter, Session } from '../../adapters/adapter.ts';
import type { LogicalRelation } from '../../adapters/logical-replication.ts';
import { Codes } from '../../errors.ts';
import { LOGICAL_BLOCKED } from '../../warehouse/meta-schema.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import type { ResolvedSpec } from '../capture-spec.ts';
import type { OltpSource } from '../oltp-source.ts';
import { withRetry } from '../retry.ts';
import { addRawColumns, canonicalType, rawTypeOf, readSourceColumns } from '../source-columns.ts';

export interface RelationContext {
  wh: Adapter;
  oltp: OltpSource;
  metaSchema: string;
  slot: string;
}

/** raw's columns per captured table (`schema.table`): name → raw type as canonicalType spells it. */
export type RawColumns = Map<string, Map<string, string>>;

/**
 * DDL is not replicated, but a Relation message says which columns a table has now, with their
 * types. Before any change that carries the new shape is queued:
 * - a new column is added to raw (its type read from the OLTP's catalog);
 * - a column whose type changed is widened in raw when raw's type holds every value of the new
 *   one (`widens`); otherwise the table is blocked: its changes are still queued, its apply fails
 *   (TSF436) until a set-up copies it again;
 * - a column raw has and the OLTP no longer has is noted: raw keeps it (rows changed from now on
 *   keep their value there, new rows have NULL).
 */
export async function followRelation(o: RelationContext, spec: ResolvedSpec, r: LogicalRelation, lsn: string, rawColumns: RawColumns, notes: string[]): Promise<void> {
  let have = rawColumns.get(spec.label);
  if (!have) {
    have = new Map(((await o.wh.describe(spec.rawSchema, spec.table))?.columns ?? []).map((c) => [c.name, canonicalType(c.type)]));
    rawColumns.set(spec.label, have);
  }
  const columns = r.columns.filter((c) => c.name !== spec.deletedColumn);
  const names = columns.map((c) => c.name);
  const added = names.filter((n) => !have.has(n));
  if (added.length > 0) {
    const source = await o.oltp.readTransaction((t) => readSourceColumns(t, spec.sourceSchema, spec.table));
    const byName = new Map(source.map((c) => [c.name, c]));
    const fresh = added.map((n) => byName.get(n) ?? { name: n, sourceType: 'text', rawType: 'VARCHAR', nullable: true, hasDefault: false });
    const done = await withRetry(o.wh, () => o.wh.transaction((s) => addRawColumns(s, { schema: spec.rawSchema, table: spec.table }, fresh)));
    for (const c of done) {
      notes.push(`${spec.label}: new source column "${c.name}" added to ${spec.rawSchema}.${spec.table}`);
      if ((c.hasDefault || !c.nullable) && c.missingValue === undefined) {
        notes.push(
          `${spec.label}: column "${c.name}" was added with values the stream does not carry for earlier rows (a table rewrite is not replicated): to copy every table again, drop the slot (SELECT pg_drop_replication_slot('${o.slot}')) and run capture`,
        );
      }
    }
    for (const c of fresh) have.set(c.name, canonicalType(c.rawType));
  }
  const types = await sourceTypes(o.oltp, columns.filter((c) => !added.includes(c.name)));
  for (const [name, sourceType] of types) {
    const want = rawTypeOf(sourceType);
    const is = have.get(name)!;
    if (want === is) continue;
    const raw = `${spec.rawSchema}.${spec.table}`;
    if (widens(is, want)) {
      try {
        await withRetry(o.wh, () => o.wh.transaction((s) => s.query(`ALTER TABLE ${quoteRelation(spec.rawSchema, spec.table)} ALTER COLUMN ${quoteIdent(name)} TYPE ${want}`)));
        have.set(name, want);
        notes.push(`${spec.label}: column "${name}" is ${sourceType} in the OLTP now: ${raw}."${name}" widened from ${is} to ${want}`);
        continue;
      } catch (err) {
        await block(o, spec, lsn, `column "${name}" is ${sourceType} in the OLTP now; ${raw}."${name}" (${is}) could not be widened to ${want}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, notes);
        continue;
      }
    }
    await block(o, spec, lsn, `column "${name}" changed type: raw ${raw} has ${is}, the OLTP now has ${sourceType} (raw type ${want}), which ${is} cannot hold without loss`, notes);
  }
  for (const gone of [...have.keys()].filter((n) => !names.includes(n) && n !== spec.deletedColumn)) {
    notes.push(`${spec.label}: column "${gone}" is no longer in the source; raw keeps it (rows updated from now on keep their value there, new rows have NULL)`);
  }
}

/** Raw type `from` widens to `to` when `to` holds every value of `from` exactly (canonicalType spellings). */
export function widens(from: string, to: string): boolean {
  if (from === to) return true;
  const dec = (t: string) => /^DECIMAL\((\d+),(\d+)\)$/.exec(t);
  const integerDigits: Record<string, number> = { INTEGER: 10, BIGINT: 19 };
  const d = dec(to);
  if (d) {
    const [p, s] = [Number(d[1]), Number(d[2])];
    if (integerDigits[from] !== undefined) return p - s >= integerDigits[from]!;
    const f = dec(from);
    return f !== null && s >= Number(f[2]) && p - s >= Number(f[1]) - Number(f[2]);
  }
  if (from === 'INTEGER') return to === 'BIGINT' || to === 'DOUBLE PRECISION';
  if (from === 'REAL') return to === 'DOUBLE PRECISION';
  return false;
}

/** The Relation message's columns' types as `format_type` names them (the type at that point of the stream, not the catalog's now). */
async function sourceTypes(oltp: OltpSource, columns: LogicalRelation['columns']): Promise<Map<string, string>> {
  if (columns.length === 0) return new Map();
  const { rows } = await oltp.query(
    `SELECT u.n AS name, lower(pg_catalog.format_type(u.o, nullif(u.m, -1))) AS type FROM unnest($1::text[], $2::oid[], $3::int[]) AS u(n, o, m)`,
    [columns.map((c) => c.name), columns.map((c) => String(c.typeOid)), columns.map((c) => String(c.typeMod))],
  );
  return new Map(rows.map((r) => [String(r.name), String(r.type)]));
}

async function block(o: RelationContext, spec: ResolvedSpec, lsn: string, why: string, notes: string[]): Promise<void> {
  const reason =
    `capture ${spec.label}: ${why}. Its changes stay queued but are not applied: the next tsform run or tsform capture copies ${spec.label} again from a snapshot ` +
    `(a running tsform capture --follow does not: stop it and start it again)`;
  await withRetry(o.wh, () => o.wh.transaction((s) => writeBlock(s, o.metaSchema, spec.label, reason, lsn)));
  notes.push(`${Codes.columnTypeChanged}: ${reason}`);
}

async function writeBlock(s: Session, metaSchema: string, label: string, reason: string, lsn: string): Promise<void> {
  const rel = quoteRelation(metaSchema, LOGICAL_BLOCKED.name);
  await s.query(`DELETE FROM ${rel} WHERE source_table = $1`, [label]);
  await s.query(`INSERT INTO ${rel} (source_table, reason, since_lsn) VALUES ($1, $2, $3)`, [label, reason, lsn]);
}

/** Why the table's changes cannot be applied, or undefined. */
export async function readBlock(wh: Adapter | Session, metaSchema: string, label: string): Promise<string | undefined> {
  const { rows } = await wh.query(`SELECT reason FROM ${quoteRelation(metaSchema, LOGICAL_BLOCKED.name)} WHERE source_table = $1`, [label]);
  return rows[0] ? String(rows[0].reason) : undefined;
}

export async function blockedTables(wh: Adapter, metaSchema: string): Promise<Set<string>> {
  const { rows } = await wh.query(`SELECT source_table FROM ${quoteRelation(metaSchema, LOGICAL_BLOCKED.name)}`);
  return new Set(rows.map((r) => String(r.source_table)));
}

export async function clearBlock(s: Session, metaSchema: string, label: string): Promise<void> {
  await s.query(`DELETE FROM ${quoteRelation(metaSchema, LOGICAL_BLOCKED.name)} WHERE source_table = $1`, [label]);
}
