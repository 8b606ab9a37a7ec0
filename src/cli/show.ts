import type { Adapter, Row, SqlParam } from '../adapters/adapter.ts';
import type { ModelNode } from '../artifacts/manifest.ts';
import { Codes, TsformError } from '../errors.ts';
import { selectNodes, selectTenants } from '../graph/select.ts';
import { quoteIdent } from '../sql/quote.ts';
import type { Workspace } from './workspace.ts';

export interface ShowRequest {
  select: string[];
  tenant?: string[];
  limit: number;
}

/** What `tsform show` ran: one practice's rows of one model (or a shared model's rows). */
export interface ShowQuery {
  model: ModelNode;
  /** The practice whose slice is shown; undefined for a shared model (reference data, no practice rows). */
  tenant?: string;
  sql: string;
  params: SqlParam[];
}

export interface ShownRows {
  columns: string[];
  rows: Row[];
}

/**
 * dbt's `show`, with the warehouse's isolation: a tenant-scoped model is shown for exactly one
 * practice. Its compiled SQL already reads only the bound practice's rows; the outer filter on the
 * tenant column keeps a model that does not (a view over every practice) to that practice too.
 * The practice id and the limit are bound parameters. Research and vault relations, and global
 * models (population data), are for a vault steward only. Pure: the adapter runs what it returns.
 */
export function showQuery(ws: Workspace, req: ShowRequest): ShowQuery {
  const picked = [...selectNodes(ws.dag, req.select, undefined)];
  if (picked.length !== 1) {
    throw new TsformError(Codes.showRefused, `show previews one model; --select ${req.select.join(' ')} picks ${picked.length} nodes (${picked.slice(0, 5).join(', ')}${picked.length > 5 ? ', …' : ''})`);
  }
  const model = ws.manifest.models[picked[0]!];
  if (!model) throw new TsformError(Codes.showRefused, `show previews models; '${picked[0]}' is a ${ws.dag.graph.getNodeAttribute(picked[0]!, 'node').kind}`);
  refuseRestricted(ws, model);
  const tenantColumn = quoteIdent(ws.manifest.tenant_column);
  // Tenant-scoped SQL reads its refs through `$1` (the bound practice ids); other SQL binds nothing.
  const readsTenants = /\$1(?!\d)/.test(model.compiled_sql);
  const first = readsTenants ? 2 : 1;
  if (model.scope === 'shared') {
    return { model, sql: `SELECT * FROM (\n${model.compiled_sql}\n) AS "__tsf_show" LIMIT $${first}`, params: [...(readsTenants ? [[] as string[]] : []), req.limit] };
  }
  if (model.scope !== 'tenant') throw new TsformError(Codes.showRefused, `'${model.name}' is a ${model.scope} model (population data): tsform show previews one practice's slice; a vault steward queries research relations directly`);
  const args = (req.tenant ?? []).flatMap((a) => a.split(',')).map((a) => a.trim()).filter(Boolean);
  if (args.length !== 1 || args[0]!.startsWith('tag:')) {
    throw new TsformError(Codes.showRefused, `'${model.name}' is tenant-scoped: show needs exactly one practice, --tenant <id> (got ${args.length === 0 ? 'none' : args.map((a) => `'${a}'`).join(', ')})`);
  }
  const [tenant] = selectTenants(ws.project.tenants, args);
  const sql = `SELECT * FROM (\n${model.compiled_sql}\n) AS "__tsf_show" WHERE ${tenantColumn} = $${first} LIMIT $${first + 1}`;
  return { model, tenant: tenant!.id, sql, params: [...(readsTenants ? [[tenant!.id]] : []), tenant!.id, req.limit] };
}

/** Runs the preview; a relation it reads that is not built yet is said so, with what to build. */
export async function runShow(adapter: Adapter, q: ShowQuery): Promise<ShownRows> {
  try {
    const r = await adapter.query(q.sql, q.params);
    return { columns: r.columns, rows: r.rows };
  } catch (e) {
    throw new TsformError(Codes.showRefused, `show ${q.model.name}: ${adapter.describeError(e)} (are its upstream relations built? ${buildCommand(q)})`);
  }
}

/** A target with no warehouse yet: said before opening it, which would create an empty one. */
export function notBuiltError(q: ShowQuery, target: string, path: string): TsformError {
  return new TsformError(Codes.showRefused, `show ${q.model.name}: target '${target}' has no warehouse yet (${path}): nothing is built there; ${buildCommand(q)}`);
}

const buildCommand = (q: ShowQuery) => `tsform build --select +${q.model.name}${q.tenant ? ` --tenant ${q.tenant}` : ''}`;

/** Research and vault relations: never through show (a steward has the audited paths). */
function refuseRestricted(ws: Workspace, model: ModelNode): void {
  const { research, vault } = ws.project.config.schemas;
  if (model.schema === research || model.schema === vault || model.pseudonymized) {
    throw new TsformError(Codes.showRefused, `'${model.name}' is a research relation (schema ${model.schema}): tsform show does not preview research or vault data`);
  }
}

/** Rows as an aligned text table; long values are cut (the preview is for a glance, --output json has them whole). */
export function formatRows(shown: ShownRows, width = 40): string[] {
  const cell = (v: unknown) => {
    const text = v === null || v === undefined ? 'NULL' : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) : String(v);
    return text.length > width ? `${text.slice(0, width - 1)}…` : text;
  };
  const table = [shown.columns, ...shown.rows.map((r) => shown.columns.map((c) => cell(r[c])))];
  const widths = shown.columns.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((v, i) => v.padEnd(widths[i]!)).join(' | ').trimEnd();
  return [line(table[0]!), widths.map((w) => '-'.repeat(w)).join('-+-'), ...table.slice(1).map(line)];
}
