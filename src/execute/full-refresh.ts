import type { Adapter, Session } from '../adapters/adapter.ts';
import type { ManifestNode } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import type { Plan } from '../plan/plan.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { FULL_REFRESH_PENDING, migrateMeta } from '../warehouse/meta-schema.ts';
import { createTenantTable } from '../warehouse/tenant-table.ts';
import { STAGE_TABLE } from './slice-replace.ts';

/**
 * `--full-refresh` over every practice, without a moment when a practice has no rows. Nothing is
 * dropped up front: the refresh records its per-practice relations as pending (meta table
 * `full_refresh_pending`), and the first slice of each written in the refresh creates the table
 * again in its own transaction (the staged shape, partitioning and row-level security as for a
 * new table), carrying over the previous rows of every other practice in tenants.yml; later
 * slices replace their practice's rows in that table. So a practice whose rebuild fails, or
 * never runs (an interrupted run), keeps its previous rows, and rows of practices no longer in
 * tenants.yml are left behind with the old table. The record lives in the warehouse so that a
 * distributed refresh's workers share it: the first write of any of them recreates the table.
 */

const PENDING = FULL_REFRESH_PENDING.name;
const KEEP_TABLE = '__tsf_refresh_keep';

/** `schema.identifier`, the key of a relation in the pending record. */
export function relationKey(node: Pick<ManifestNode, 'schema' | 'identifier'>): string {
  return `${node.schema}.${node.identifier}`;
}

export interface RefreshTargets {
  /** The plan's tenant-scoped models (of `only`, when given: a distributed run's per-practice steps). */
  nodes: ManifestNode[];
  /** `schema.identifier` of every relation the plan builds (models; an ephemeral one is no relation). */
  rebuilt: Set<string>;
}

export function refreshTargets(plan: Plan, nodes: Readonly<Record<string, ManifestNode>>, only?: ReadonlySet<string>): RefreshTargets {
  const rebuilt = new Set<string>();
  for (const step of plan.steps) {
    const node = nodes[step.id];
    if (step.build && node?.kind === 'model' && node.materialized !== 'ephemeral') rebuilt.add(relationKey(node));
  }
  const refreshed = plan.steps.filter((s) => s.build && s.fanOut && nodes[s.id]?.kind === 'model' && (!only || only.has(s.id)));
  return { nodes: refreshed.map((s) => nodes[s.id]!), rebuilt };
}

/**
 * Starts a refresh of the targets' tenant-scoped models. A view that reads one of them and that
 * the refresh does not rebuild refuses it (TSF310) before anything is written, as when the tables
 * were dropped up front.
 */
export async function beginFullRefresh(adapter: Adapter, metaSchema: string, refresh: string, { nodes, rebuilt }: RefreshTargets): Promise<void> {
  if (nodes.length === 0) return;
  await migrateMeta(adapter, metaSchema);
  const existing: ManifestNode[] = [];
  for (const node of nodes) if (await adapter.describe(node.schema, node.identifier)) existing.push(node);
  const pending = quoteRelation(metaSchema, PENDING);
  await adapter.transaction(async (s) => {
    // A view another session creates over one of these meanwhile would escape the check: with the
    // relations locked first, its CREATE VIEW waits for this transaction, or this check for its commit.
    if (adapter.kind === 'postgres') for (const n of existing) await s.query(`LOCK TABLE ${quoteRelation(n.schema, n.identifier)} IN ACCESS EXCLUSIVE MODE`);
    const kept: string[] = [];
    for (const node of existing) kept.push(...(await readersOutside(adapter, s, node, rebuilt)));
    if (kept.length > 0) {
      throw new TsformError(
        Codes.fullRefreshDependents,
        `--full-refresh creates again tables that views outside this run read: ${[...new Set(kept)].join(', ')}. Select those views too (e.g. --select <model>+), or drop them first; nothing was changed`,
      );
    }
    const keys = nodes.map(relationKey);
    // A refresh that was stopped left its rows: this one takes over its relations.
    await s.query(`DELETE FROM ${pending} WHERE relation = ANY($1::VARCHAR[])`, [keys]);
    const json = JSON.stringify([...rebuilt].sort());
    for (const key of keys) await s.query(`INSERT INTO ${pending} (refresh, relation, rebuilt_json) VALUES ($1, $2, $3)`, [refresh, key, json]);
  });
}

/** Ends a refresh: relations no slice was written to (every practice failed) keep their table as it was. */
export async function endFullRefresh(adapter: Adapter, metaSchema: string, refresh: string): Promise<void> {
  if (!(await adapter.describe(metaSchema, PENDING))) return;
  await adapter.transaction((s) => s.query(`DELETE FROM ${quoteRelation(metaSchema, PENDING)} WHERE refresh = $1`, [refresh]));
}

/** Whether the refresh has yet to create this relation again (then its writes take turns until one has). */
export async function refreshPending(adapter: Adapter, metaSchema: string, refresh: string, node: ManifestNode): Promise<boolean> {
  if (!(await adapter.describe(metaSchema, PENDING))) return false;
  const { rows } = await adapter.query(`SELECT 1 AS pending FROM ${quoteRelation(metaSchema, PENDING)} WHERE refresh = $1 AND relation = $2`, [refresh, relationKey(node)]);
  return rows.length > 0;
}

/**
 * Takes the relation's pending row in the write's transaction; returns the relations the refresh
 * rebuilds when this write is the one to create the table again. Writes of one relation take
 * turns while it is pending (`serializeOn`), so the next one sees the row gone, or back after a
 * rollback.
 */
export async function claimRecreate(s: Session, metaSchema: string, refresh: string, node: ManifestNode): Promise<ReadonlySet<string> | undefined> {
  const pending = quoteRelation(metaSchema, PENDING);
  const { rows } = await s.query(`SELECT rebuilt_json FROM ${pending} WHERE refresh = $1 AND relation = $2`, [refresh, relationKey(node)]);
  if (rows.length === 0) return undefined;
  await s.query(`DELETE FROM ${pending} WHERE refresh = $1 AND relation = $2`, [refresh, relationKey(node)]);
  return new Set(JSON.parse(String(rows[0]!.rebuilt_json)) as string[]);
}

export interface Shape {
  kind: 'table' | 'view';
  columns: { name: string; type: string }[];
}

/** A relation's kind and columns as this transaction sees them (the adapter's describe() uses another connection). */
export async function shapeOf(s: Session, schema: string, identifier: string): Promise<Shape | undefined> {
  // This database's own: DuckDB's information_schema also lists attached ones (slim CI's production file).
  const where = 'table_catalog = current_database() AND table_schema = $1 AND table_name = $2';
  const t = await s.query(`SELECT table_type FROM information_schema.tables WHERE ${where}`, [schema, identifier]);
  if (t.rows.length === 0) return undefined;
  const c = await s.query(`SELECT column_name, data_type FROM information_schema.columns WHERE ${where} ORDER BY ordinal_position`, [schema, identifier]);
  return {
    kind: String(t.rows[0]!.table_type) === 'VIEW' ? 'view' : 'table',
    columns: c.rows.map((r) => ({ name: String(r.column_name), type: String(r.data_type) })),
  };
}

export interface Recreate {
  adapter: Adapter;
  node: ManifestNode;
  tenantColumn: string;
  /** Every practice in tenants.yml: the previous rows of those outside `tenants` are carried over. */
  practices: readonly string[];
  /** The practices this write rebuilds (their rows come from the staged table, written by the caller). */
  tenants: readonly string[];
  rebuilt: ReadonlySet<string>;
  /** Row-level security and grants of a new table (relation-write.ts protect). */
  protect: (s: Session) => Promise<void>;
}

/**
 * Creates the relation again with the staged table's shape, in the caller's transaction, and
 * carries over the other practices' previous rows. Where the columns changed, carried rows keep
 * the columns whose name and type are unchanged (the others are NULL until the practice's own
 * rebuild), and a note says so; without the tenant column among those, nothing is carried.
 */
export async function recreateForRefresh(s: Session, r: Recreate, old: Shape | undefined): Promise<string[]> {
  const { node } = r;
  const rel = quoteRelation(node.schema, node.identifier);
  const others = r.practices.filter((t) => !r.tenants.includes(t));
  if (old) {
    if (r.adapter.kind === 'postgres') await s.query(`LOCK TABLE ${rel} IN ACCESS EXCLUSIVE MODE`);
    // Checked again under the lock: a view may have been created since the refresh began.
    const readers = (await r.adapter.dependentViews?.(node.schema, node.identifier, s)) ?? [];
    const outside = namedOutside(readers, node, r.rebuilt);
    if (outside.length > 0) {
      throw new TsformError(Codes.fullRefreshDependents, `--full-refresh creates again ${relationKey(node)}, which views outside this run read: ${outside.join(', ')}; its previous rows were kept`);
    }
    if (old.kind === 'table' && readers.length > 0 && (await sameShapeUnpartitioned(s, rel))) {
      // Dropping it would drop the views over it (CASCADE) until their own steps build them again,
      // and for good if the run stops before that: the same table with the same shape holds what a
      // new one would (the caller replaces these practices' rows; those outside tenants.yml go here).
      const tc = quoteIdent(r.tenantColumn);
      await s.query(`DELETE FROM ${rel} WHERE ${tc} IS NULL OR NOT (${tc} = ANY($1::VARCHAR[]))`, [[...r.practices]]);
      // The refresh applies the current row-level security, as to a new table (the templates are
      // idempotent: `tsform policies apply` runs them over existing tables too).
      await r.protect(s);
      return [];
    }
    if (old.kind === 'table') {
      await s.createTempTableAs(KEEP_TABLE, `SELECT * FROM ${rel} WHERE ${quoteIdent(r.tenantColumn)} = ANY($1::VARCHAR[])`, [[...others]]);
    }
    await s.query(`DROP ${old.kind === 'view' ? 'VIEW' : 'TABLE'} ${rel}${readers.length > 0 ? ' CASCADE' : ''}`);
  }
  await createTenantTable(s, node.schema, node.identifier, STAGE_TABLE, r.tenantColumn);
  await r.protect(s);
  if (old?.kind !== 'table') return [];
  const notes = await carryOver(s, r, old);
  await s.dropTempTable(KEEP_TABLE);
  return notes;
}

/**
 * PostgreSQL: whether the staged rows have the table's columns (names, types and order) and
 * neither the target nor the table is partitioned (a refresh is how a new partition layout is
 * taken up, so such a table is always created again).
 */
async function sameShapeUnpartitioned(s: Session, rel: string): Promise<boolean> {
  if (s.createPartitionedLike) return false;
  const columns = (regclass: string) =>
    `(SELECT array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = to_regclass(${regclass}) AND a.attnum > 0 AND NOT a.attisdropped)`;
  const { rows } = await s.query(
    `SELECT ${columns('$1')} = ${columns('$2')} AS same,
            EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass($1)) OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1)) AS partitioned`,
    [rel, `pg_temp.${quoteIdent(STAGE_TABLE)}`],
  );
  return rows[0]?.same === true && rows[0]?.partitioned === false;
}

async function carryOver(s: Session, r: Recreate, old: Shape): Promise<string[]> {
  const now = (await shapeOf(s, r.node.schema, r.node.identifier))!;
  const kept = now.columns.filter((c) => old.columns.some((o) => o.name === c.name && o.type === c.type)).map((c) => c.name);
  if (!kept.includes(r.tenantColumn)) {
    const { rows } = await s.query(`SELECT count(*) AS n FROM ${quoteIdent(KEEP_TABLE)}`);
    return Number(rows[0]?.n ?? 0) > 0 ? ['the tenant column changed: the previous rows of practices not rebuilt yet could not be kept'] : [];
  }
  const cols = kept.map(quoteIdent).join(', ');
  const carried = await s.query(`INSERT INTO ${quoteRelation(r.node.schema, r.node.identifier)} (${cols}) SELECT ${cols} FROM ${quoteIdent(KEEP_TABLE)}`);
  if (carried.rowsChanged === 0 || kept.length === now.columns.length) return [];
  return [`columns changed: practices not rebuilt yet keep their previous rows in the unchanged columns (${now.columns.length - kept.length} new or changed column(s) NULL) until their own rebuild`];
}

/** Views reading the relation (PostgreSQL) that the refresh does not rebuild, named with what they read. */
async function readersOutside(adapter: Adapter, s: Session, node: ManifestNode, rebuilt: ReadonlySet<string>): Promise<string[]> {
  return namedOutside((await adapter.dependentViews?.(node.schema, node.identifier, s)) ?? [], node, rebuilt);
}

function namedOutside(readers: readonly { schema: string; name: string }[], node: ManifestNode, rebuilt: ReadonlySet<string>): string[] {
  return readers.filter((v) => !rebuilt.has(`${v.schema}.${v.name}`)).map((v) => `${v.schema}.${v.name} (reads ${relationKey(node)})`);
}
