import type { Adapter, Session } from '../adapters/adapter.ts';
import { CAPTURE_WATERMARKS, LANDING_FILES, TENANT_KEYED_TABLES, TENANT_STATE } from '../warehouse/meta-schema.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { TABLE_WIDE } from './watermarks.ts';

const META_TABLES: readonly string[] = TENANT_KEYED_TABLES.map((t) => t.name);

export interface TenantRelation {
  schema: string;
  identifier: string;
}

export interface PurgeCount {
  relation: string;
  rows: number;
}

/**
 * Practices that have capture state or run state in the warehouse but are no longer in
 * tenants.yml (offboarded): their rows stay until `tsform purge` removes them.
 */
export async function findRetiredTenants(wh: Adapter, metaSchema: string, known: readonly string[]): Promise<string[]> {
  const present: string[] = [];
  for (const t of [CAPTURE_WATERMARKS.name, LANDING_FILES.name, TENANT_STATE.name]) if (await wh.describe(metaSchema, t)) present.push(t);
  if (present.length === 0) return [];
  const union = present.map((t) => `SELECT tenant FROM ${quoteRelation(metaSchema, t)}`).join(' UNION ');
  const { rows } = await wh.query(`SELECT DISTINCT tenant FROM (${union}) AS u WHERE NOT (tenant = ANY($1::VARCHAR[])) ORDER BY tenant`, [[...known, TABLE_WIDE]]);
  return rows.map((r) => String(r.tenant));
}

/**
 * Deletes one practice's rows from every given tenant-scoped relation and from tsform's capture
 * and run state, in one transaction per database (DuckDB keeps research and vault in files of
 * their own, and one transaction writes one file; PostgreSQL: `databases` is one group). The
 * practice id is a bound parameter. With `dryRun`, counts what would go and changes nothing.
 */
export async function purgeTenant(
  wh: Adapter,
  opts: { tenant: string; relations: readonly TenantRelation[]; tenantColumn: string; metaSchema: string; separateSchemas: readonly string[]; dryRun: boolean },
): Promise<PurgeCount[]> {
  const existing: TenantRelation[] = [];
  for (const r of opts.relations) {
    const info = await wh.describe(r.schema, r.identifier);
    if (info?.kind === 'table' && info.columns.some((c) => c.name === opts.tenantColumn)) existing.push(r);
  }
  const meta: TenantRelation[] = [];
  for (const t of META_TABLES) if (await wh.describe(opts.metaSchema, t)) meta.push({ schema: opts.metaSchema, identifier: t });
  const column = (r: TenantRelation) => (r.schema === opts.metaSchema && META_TABLES.includes(r.identifier) ? 'tenant' : opts.tenantColumn);
  const groups = new Map<string, TenantRelation[]>();
  for (const r of [...existing, ...meta]) {
    const group = wh.kind === 'duckdb' && opts.separateSchemas.includes(r.schema) ? r.schema : '';
    groups.set(group, [...(groups.get(group) ?? []), r]);
  }
  const counts: PurgeCount[] = [];
  for (const rels of groups.values()) {
    const run = async (s: Pick<Session, 'query'>) => {
      for (const r of rels) {
        const where = `${quoteIdent(column(r))} = $1`;
        const rel = quoteRelation(r.schema, r.identifier);
        const n = opts.dryRun
          ? Number((await s.query(`SELECT count(*) AS n FROM ${rel} WHERE ${where}`, [opts.tenant])).rows[0]?.n ?? 0)
          : (await s.query(`DELETE FROM ${rel} WHERE ${where}`, [opts.tenant])).rowsChanged;
        counts.push({ relation: `${r.schema}.${r.identifier}`, rows: n });
      }
    };
    if (opts.dryRun) await run(wh);
    else await wh.transaction(run);
  }
  return counts;
}
