/**
 * The FROM items a SELECT of the lineage walk (phi-lineage-analyze.ts) reads, and what a column
 * name resolves to among them: an item's column, an outer query's (a correlated sub-select), an
 * earlier output alias, or a whole row.
 */
import type { ColumnRef } from 'libpg-query';
import { combine, noneInfo, noteInfo, step, type Info } from './phi-lineage-info.ts';
import { lower } from './phi-lineage-nodes.ts';
import { LineageError, sval, type Column, type Shape } from './phi-lineage-shape.ts';

export interface FromItem {
  /** Lower-cased names a column may be qualified with: the alias, or the table name (and schema.table). */
  qualifiers: string[];
  /** For step labels: how the query names this item. */
  label: string;
  shape: Shape;
}

export interface Scope {
  items: FromItem[];
  outer: Scope | undefined;
  /** Output columns so far (DuckDB lets a later select item name an earlier alias). */
  outputs?: Column[];
}

export function columnRef(cr: ColumnRef, scope: Scope): Info {
  const fields = (cr.fields ?? []).map((f) => ('A_Star' in f ? '*' : (sval(f) ?? '')));
  const name = fields[fields.length - 1] ?? '';
  if (fields.length === 1) return unqualified(name, scope);
  const qualifier = fields.slice(Math.max(0, fields.length - 3), -1).join('.');
  const items = itemsNamed(scope, qualifier);
  if (items.length === 0) return noteInfo([`unknown table or alias ${qualifier} (${qualifier}.${name})`]);
  if (name === '*') return step(combine(items.flatMap((it) => it.shape.columns.map((c) => c.info)).concat(noneInfo())), `${qualifier}.*`);
  const hits = items.flatMap((it) => it.shape.columns.filter((c) => lower(c.name) === lower(name)).map((c) => c.info));
  if (hits.length > 0) return step(combine(hits), `${qualifier}.${name}`);
  const opaque = items.flatMap((it) => it.shape.opaque);
  if (opaque.length > 0) return noteInfo(opaque.map((o) => `unknown relation ${o}`));
  return noteInfo([`column ${qualifier}.${name} is not classified`]);
}

function unqualified(name: string, scope: Scope): Info {
  for (let s: Scope | undefined = scope; s; s = s.outer) {
    const hits = s.items.flatMap((it) => it.shape.columns.filter((c) => lower(c.name) === lower(name)).map((c) => c.info));
    if (hits.length > 0) return step(combine(hits), name);
    const opaque = s.items.flatMap((it) => it.shape.opaque);
    if (opaque.length > 0) return noteInfo(opaque.map((o) => `unknown relation ${o}`));
    const earlier = s === scope ? (s.outputs ?? []).filter((c) => lower(c.name) === lower(name)) : [];
    if (earlier.length > 0) return step(combine(earlier.map((c) => c.info)), name);
    // A whole-row reference (`to_json(p)`) reads every column of p.
    const whole = s.items.filter((it) => it.qualifiers.includes(lower(name)));
    if (whole.length > 0) return step(combine(whole.flatMap((it) => it.shape.columns.map((c) => c.info)).concat(noneInfo())), name);
  }
  const where = scope.items.map((it) => it.label).join(', ');
  return noteInfo([`column ${name} is not classified${where ? ` in ${where}` : ''}`]);
}

/** Items a qualifier names, innermost query first (correlated subqueries see outer ones). */
export function itemsNamed(scope: Scope, qualifier: string): FromItem[] {
  for (let s: Scope | undefined = scope; s; s = s.outer) {
    const items = s.items.filter((it) => it.qualifiers.includes(lower(qualifier)));
    if (items.length > 0) return items;
  }
  return [];
}

/** The column names a NATURAL join matches on: those both sides have; unknown when a side's columns are. */
export function naturalColumns(left: readonly FromItem[], right: readonly FromItem[]): string[] {
  const names = (items: readonly FromItem[]) => {
    if (items.some((it) => it.shape.opaque.length > 0)) throw new LineageError('NATURAL JOIN with a relation whose columns are unknown: list the join columns (USING or ON)');
    return new Set(items.flatMap((it) => it.shape.columns.map((c) => lower(c.name))));
  };
  const r = names(right);
  return [...names(left)].filter((n) => r.has(n));
}
