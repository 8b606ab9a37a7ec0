import { quoteIdent, quoteRelation } from '../sql/quote.ts';

/**
 * SQL for "this relation, restricted to the bound practices". `$1` is the array of bound practice
 * ids: a bound parameter, never text. `= ANY($1::VARCHAR[])` lets DuckDB skip blocks by zonemap
 * (notes/duckdb-fanout.md) and lets PostgreSQL use the index leading with the tenant column.
 */
export function tenantFilter(tenantColumn: string, alias?: string): string {
  const col = alias ? `${quoteIdent(alias)}.${quoteIdent(tenantColumn)}` : quoteIdent(tenantColumn);
  return `${col} = ANY($1::VARCHAR[])`;
}

export function filteredSelect(schema: string, identifier: string, tenantColumn: string, catalog?: string): string {
  const rel = catalog ? `${quoteIdent(catalog)}.${quoteRelation(schema, identifier)}` : quoteRelation(schema, identifier);
  return `SELECT * FROM ${rel} WHERE ${tenantFilter(tenantColumn)}`;
}

/** CTE names tsform adds; prefixed so they cannot collide with an author's own CTEs. */
export function cteName(kind: 'ref' | 'src' | 'this', name: string): string {
  return quoteIdent(`__tsf_${kind}_${name}`);
}

/**
 * Prepends tsform's CTEs to a model's SELECT, merging with the author's own WITH clause when
 * there is one (a second WITH would be a syntax error).
 */
export function withCtes(body: string, ctes: { name: string; sql: string }[]): string {
  if (ctes.length === 0) return body.trim();
  const defs = ctes.map((c) => `${c.name} AS (\n${indent(c.sql)}\n)`).join(',\n');
  const trimmed = body.trim();
  const lead = leadingTrivia(trimmed);
  const rest = trimmed.slice(lead.length);
  const recursive = /^with\s+recursive\b/i.exec(rest);
  if (recursive) return `${lead}WITH RECURSIVE ${defs},\n${rest.slice(recursive[0].length).trimStart()}`;
  const plain = /^with\b/i.exec(rest);
  if (plain) return `${lead}WITH ${defs},\n${rest.slice(plain[0].length).trimStart()}`;
  return `${lead}WITH ${defs}\n${rest}`;
}

function leadingTrivia(sql: string): string {
  const m = /^(\s|--[^\n]*(\n|$)|\/\*[\s\S]*?\*\/)*/.exec(sql);
  return m?.[0] ?? '';
}

function indent(sql: string): string {
  return sql
    .trim()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
