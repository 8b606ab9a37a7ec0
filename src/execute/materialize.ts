import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Adapter, Session } from '../adapters/adapter.ts';
import type { Manifest, ManifestNode } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import { parseCsv } from '../project/seed-csv.ts';
import type { Tenant } from '../project/types.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import type { PrivacyConfig } from '../project/types.ts';
import type { PolicyContext } from './apply-policies.ts';
import { checkStagedForLeaks, describePublication, gatePublication } from './privacy-gates.ts';
import { buildVaultTokens } from './vault.ts';
import { inferColumnType, loadCsvText, typedSelect } from './load-csv.ts';
import {
  dropStage,
  ensureTargetTable,
  mergeSlice,
  replaceSlice,
  STAGE_TABLE,
  stageTenantRows,
  type RowsByTenant,
  type Target,
} from './slice-replace.ts';

export interface BuildContext {
  adapter: Adapter;
  /** Row-level security to put on relations as they are created (PostgreSQL with policies). */
  policy?: PolicyContext;
  manifest: Manifest;
  projectRoot: string;
  metaSchema: string;
  tenantColumn: string;
  tenants: readonly Tenant[];
  fullRefresh: boolean;
  /** Per-node statement timeout. */
  nodeTimeoutMs?: number;
  /** The vault key, resolved once per run when a vault node runs (privacy: in tsform.yml). */
  vaultKey?: () => Promise<{ key: Buffer; fingerprint: string }>;
  privacy?: PrivacyConfig;
  /** Relations in this schema are published research: k-anonymous or not written at all. */
  researchSchema?: string;
  /**
   * Builds a captured source (`node.capture`) for one practice: its extract from its own
   * watermark into raw. Given by the caller that owns the OLTP connection (cli/), so that
   * execute/ needs no ingest/ import. Absent: a captured source fails with TSF408.
   */
  capture?: CaptureNode;
}

/** `protect` applies the node's row-level security in a transaction that creates its table. */
export type CaptureNode = (node: ManifestNode, tenant: string, protect: (s: Session) => Promise<void>) => Promise<BuildOutcome>;

export interface BuildOutcome {
  rows: RowsByTenant;
  /** Counted problems that are not failures (e.g. source rows of unknown practices). */
  notes: string[];
  /**
   * The build used its time slice and has work left (a capture backlog: what it did is
   * committed). The runner runs the node again after every practice with less service.
   */
  more?: boolean;
}

/** A per-transaction load table: concurrent batches must not create the same name. */
function loadTableName(): string {
  return `__tsf_load_${randomBytes(6).toString('hex')}`;
}

/**
 * Builds one tenant-scoped node for a batch of practices, in one transaction: the batch's slice
 * is replaced (or merged) atomically and nothing outside the slice is touched.
 */
export async function buildTenantNode(ctx: BuildContext, node: ManifestNode, tenants: readonly string[]): Promise<BuildOutcome> {
  if (node.capture) return captureTenant(ctx, node, tenants);
  if (node.kind === 'vault') {
    const key = await ctx.vaultKey!();
    const identity = ctx.manifest.models[ctx.privacy!.identityModel]!;
    const rows = await ctx.adapter.transaction(
      (s) => buildVaultTokens(s, node, identity, tenants, ctx.tenantColumn, ctx.privacy!, key),
      { timeoutMs: ctx.nodeTimeoutMs },
    );
    return { rows, notes: [] };
  }
  const existing = await ctx.adapter.describe(node.schema, node.identifier);
  return ctx.adapter.transaction(async (s) => {
    const notes: string[] = [];
    let select: string;
    let incremental = false;
    const loadTable = loadTableName();
    if (node.kind === 'source') {
      const load = await loadSourceText(ctx, s, node, tenants, loadTable);
      if (load.unknownTenantRows > 0) {
        notes.push(`${load.unknownTenantRows} row(s) carry a ${ctx.tenantColumn} that is not in tenants.yml; not loaded`);
      }
      // The load kept only these practices' rows; the filter keeps `$1` uniform with models.
      select = `${typedSelect(ctx.metaSchema, loadTable, load.header, dataTypes(node))} WHERE ${quoteIdent(ctx.tenantColumn)} = ANY($1::VARCHAR[])`;
    } else {
      incremental =
        node.materialized === 'incremental' && existing !== undefined && !ctx.fullRefresh && (await sliceExists(s, node, tenants, ctx.tenantColumn));
      select = (incremental ? node.compiled_incremental_sql : node.compiled_sql) ?? '';
    }
    const target = targetOf(node);
    const staged = await stageTenantRows(s, target, select, tenants, ctx.tenantColumn);
    // Pseudonymized rows are scanned for raw identifiers before they are written.
    if (ctx.privacy && node.kind === 'model' && node.pseudonymized) await checkStagedForLeaks(s, STAGE_TABLE, node, ctx.manifest, ctx.privacy, tenants);
    await ensureTargetTable(s, target, staged.columns, existing?.columns.map((c) => c.name), false);
    // Protected in the transaction that creates it: no other session ever sees it unprotected.
    if (!existing) await protect(ctx, s, node);
    if (incremental) await mergeSlice(s, target, staged.columns, node.unique_key, tenants, ctx.tenantColumn);
    else await replaceSlice(s, target, staged.columns, tenants, ctx.tenantColumn);
    await dropStage(s);
    if (node.kind === 'source') await s.query(`DROP TABLE ${quoteRelation(ctx.metaSchema, loadTable)}`);
    return { rows: staged.rows, notes };
  }, { timeoutMs: ctx.nodeTimeoutMs });
}

async function captureTenant(ctx: BuildContext, node: ManifestNode, tenants: readonly string[]): Promise<BuildOutcome> {
  if (!ctx.capture) throw new TsformError(Codes.unsupported, `${node.name} is captured (${node.capture!.kind}) but this run was started without capture`);
  // The plan gives captured sources one practice per node (plan.ts: singleTenant).
  if (tenants.length !== 1) throw new Error(`${node.name}: a captured source is built one practice at a time, got ${tenants.length}`);
  return ctx.capture(node, tenants[0]!, (s) => protect(ctx, s, node));
}

/** `--full-refresh` of a tenant-scoped table: dropped once, before any batch rebuilds its slice. */
export async function dropForFullRefresh(ctx: BuildContext, node: ManifestNode): Promise<void> {
  const existing = await ctx.adapter.describe(node.schema, node.identifier);
  if (existing) await ctx.adapter.query(`DROP ${existing.kind === 'view' ? 'VIEW' : 'TABLE'} ${quoteRelation(node.schema, node.identifier)}`);
}

/** Global and shared nodes, views, seeds and the tenants relation: built once per run. */
export async function buildOnceNode(ctx: BuildContext, node: ManifestNode): Promise<BuildOutcome> {
  const rel = quoteRelation(node.schema, node.identifier);
  const existing = await ctx.adapter.describe(node.schema, node.identifier);
  if (node.materialized === 'view') {
    return ctx.adapter.transaction(async (s) => {
      if (existing?.kind === 'table') await s.query(`DROP TABLE ${rel}`);
      else if (existing) await s.query(`DROP VIEW ${rel}`);
      await s.query(`CREATE VIEW ${rel} AS\n${node.compiled_sql ?? ''}`);
      await protect(ctx, s, node);
      return { rows: new Map(), notes: [] };
    }, { timeoutMs: ctx.nodeTimeoutMs });
  }
  return ctx.adapter.transaction(async (s) => {
    let select: string;
    const loadTable = loadTableName();
    if (node.kind === 'seed') select = await loadSeedText(ctx, s, node, loadTable);
    else if (node.kind === 'tenants') select = await loadTenantsText(ctx, s, loadTable);
    else select = (node.materialized === 'incremental' && existing && !ctx.fullRefresh ? node.compiled_incremental_sql : node.compiled_sql) ?? '';
    await s.createTempTableAs(STAGE_TABLE, select, []);
    const notes: string[] = [];
    if (ctx.privacy && node.kind === 'model' && node.schema === ctx.researchSchema) {
      // Suppression, k-anonymity and the leak scan on the staged rows: a failure publishes nothing.
      notes.push(`published with ${describePublication(await gatePublication(s, STAGE_TABLE, node, ctx.manifest, ctx.privacy))}`);
    } else if (ctx.privacy && node.kind === 'model' && node.pseudonymized) {
      await checkStagedForLeaks(s, STAGE_TABLE, node, ctx.manifest, ctx.privacy);
    }
    const probe = await s.query(`SELECT count(*) AS n FROM ${quoteIdent(STAGE_TABLE)}`);
    const columns = (await s.query(`SELECT * FROM ${quoteIdent(STAGE_TABLE)} LIMIT 0`)).columns;
    const target = targetOf(node);
    const existingCols = existing?.kind === 'table' ? existing.columns.map((c) => c.name) : undefined;
    if (existing?.kind === 'view') await s.query(`DROP VIEW ${rel}`);
    const sameShape = existingCols !== undefined && existingCols.join('\u0000') === columns.join('\u0000');
    // Seeds, the tenants relation and full rebuilds follow their source's shape; models keep theirs.
    const reshape = node.kind !== 'model' || ctx.fullRefresh || node.materialized === 'table';
    await ensureTargetTable(s, target, columns, existingCols, reshape && existingCols !== undefined && !sameShape);
    if (node.materialized === 'incremental' && sameShape && !ctx.fullRefresh) {
      await mergeSlice(s, target, columns, node.unique_key, undefined, ctx.tenantColumn);
    } else {
      if (sameShape) await s.query(`DELETE FROM ${rel}`);
      const cols = columns.map(quoteIdent).join(', ');
      await s.query(`INSERT INTO ${rel} (${cols}) SELECT ${cols} FROM ${quoteIdent(STAGE_TABLE)}`);
    }
    await dropStage(s);
    if (node.kind === 'seed' || node.kind === 'tenants') await s.query(`DROP TABLE ${quoteRelation(ctx.metaSchema, loadTable)}`);
    return { rows: new Map([[null, Number(probe.rows[0]?.n ?? 0)]]), notes };
  }, { timeoutMs: ctx.nodeTimeoutMs });
}

async function protect(ctx: BuildContext, s: Session, node: ManifestNode): Promise<void> {
  const rel = ctx.policy?.relations.get(node.name);
  if (rel) await s.runScript(ctx.policy!.renderer.protect(rel));
}

function targetOf(node: ManifestNode): Target {
  return { schema: node.schema, identifier: node.identifier, name: node.name };
}

function dataTypes(node: ManifestNode): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(node.columns).map(([c, v]) => [c, v.data_type]));
}

async function sliceExists(s: Session, node: ManifestNode, tenants: readonly string[], tenantColumn: string): Promise<boolean> {
  const r = await s.query(
    `SELECT 1 AS present FROM ${quoteRelation(node.schema, node.identifier)} WHERE ${quoteIdent(tenantColumn)} = ANY($1::VARCHAR[]) LIMIT 1`,
    [[...tenants]],
  );
  return r.rows.length > 0;
}

async function loadSourceText(ctx: BuildContext, s: Session, node: ManifestNode, tenants: readonly string[], loadTable: string) {
  const path = node.csv_path!;
  return loadCsvText(s, join(ctx.projectRoot, path), path, ctx.metaSchema, loadTable, {
    column: ctx.tenantColumn,
    wanted: new Set(tenants),
    known: new Set(ctx.tenants.map((t) => t.id)),
  });
}

async function loadSeedText(ctx: BuildContext, s: Session, node: ManifestNode, loadTable: string): Promise<string> {
  const { header, rows } = parseCsv(readFileSync(join(ctx.projectRoot, node.path), 'utf8'));
  await s.query(`CREATE TABLE ${quoteRelation(ctx.metaSchema, loadTable)} (${header.map((h) => `${quoteIdent(h)} VARCHAR`).join(', ')})`);
  await s.insertText(ctx.metaSchema, loadTable, header, rows.map((r) => r.map((v) => (v === '' ? null : v))));
  const types: Record<string, string> = {};
  header.forEach((h, i) => {
    types[h] = node.columns[h]?.data_type ?? inferColumnType(rows.map((r) => r[i] ?? ''));
  });
  return typedSelect(ctx.metaSchema, loadTable, header, types);
}

async function loadTenantsText(ctx: BuildContext, s: Session, loadTable: string): Promise<string> {
  const header = [ctx.tenantColumn, 'name', 'timezone', 'ready_by', 'pool', 'tags'];
  await s.query(`CREATE TABLE ${quoteRelation(ctx.metaSchema, loadTable)} (${header.map((h) => `${quoteIdent(h)} VARCHAR`).join(', ')})`);
  await s.insertText(
    ctx.metaSchema,
    loadTable,
    header,
    ctx.tenants.map((t) => [t.id, t.name, t.timezone, t.readyBy, t.pool, t.tags.join(',')]),
  );
  return typedSelect(ctx.metaSchema, loadTable, header, {});
}
