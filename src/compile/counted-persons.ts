/**
 * A published aggregate's `k_anonymity_count` must count persons: the gate withholds cells
 * below k of that count, and `count(*)` of one person's encounters reaches k alone. So the count
 * must be `count(DISTINCT x)` where x is the vault's person token, passed on unchanged: followed
 * through CTEs, derived tables and upstream models' SQL (their bare renderings) to the `person_token`
 * of the vault's token map. Whatever cannot be followed (an expression, a source, a column that
 * is not output, an unqualified name among several inputs) is refused: this check fails closed.
 * Pure: the WebAssembly parser only (model-sql.ts has loaded it).
 */
import { parseSync } from 'libpg-query';
import { isObject, sval, type PgJson as Json } from './pg-tree.ts';

/** What a relation named in a bare rendering is: the vault's token map, a model (its renderings), or neither. */
export type RelationLookup = (name: string) => { vault: true } | { sqls: readonly string[] } | undefined;

const VAULT_TOKEN_COLUMN = 'person_token';
/** Models and CTEs nest a few levels; a self-reading model ({{this}}) must not loop. */
const MAX_DEPTH = 40;

interface Env {
  ctes: Map<string, { select: Json; env: Env }>;
  outer?: Env;
}

type Source = { kind: 'select'; select: Json; env: Env } | { kind: 'relation'; name: string } | { kind: 'other'; why: string };

/** Why `kCount` is not a count of distinct vault person tokens, or undefined when it is. */
export function countedPersonsProblem(sql: string, kCount: string, lookup: RelationLookup): string | undefined {
  const select = parseSelect(sql);
  if (!select) return undefined; // model-sql.ts reports what the grammar cannot read
  return new Tracer(lookup).count(select, kCount.toLowerCase(), undefined, emptyEnv());
}

class Tracer {
  constructor(private readonly lookup: RelationLookup) {}

  count(s: Json, kCount: string, position: number | undefined, env: Env): string | undefined {
    if (isSetOp(s)) {
      const at = position ?? outputPosition(s, kCount);
      return this.count(s.larg as Json, kCount, at, env) ?? this.count(s.rarg as Json, kCount, at, env);
    }
    const targets = targetsOf(s);
    const at = position ?? targets.findIndex((t) => outputName(t) === kCount);
    const fc = isObject(targets[at]?.val) ? (targets[at]!.val as Json).FuncCall as Json | undefined : undefined;
    const args = ((fc?.args as unknown[]) ?? []).filter(isObject);
    if (!fc || fc.agg_distinct !== true || args.length !== 1 || !isObject(args[0]!.ColumnRef)) {
      return `counts rows rather than persons (one person's rows can reach k); count them as count(DISTINCT <person token>)`;
    }
    const why = this.column(refFields(args[0]!), s, withCtes(s, env), 0);
    return why ? `counts ${refFields(args[0]!).join('.')}, which is not the vault's person token passed on unchanged (${why}); count(DISTINCT <person token>) counts persons` : undefined;
  }

  /** Whether the column `fields` read in the FROM of `s` is the vault's person token. */
  private column(fields: string[], s: Json, env: Env, depth: number): string | undefined {
    if (depth > MAX_DEPTH) return 'too deep to follow';
    if (fields.length === 0 || fields.length > 2) return `${fields.join('.') || '*'} cannot be followed`;
    const items = fromItems((s.fromClause as unknown[]) ?? [], env);
    const column = fields.at(-1)!;
    const candidates = fields.length === 2 ? items.filter((i) => i.qualifier === fields[0]) : items;
    if (candidates.length !== 1) {
      return fields.length === 2 ? `no single input named ${fields[0]}` : `${column} is unqualified among ${items.length} inputs; qualify it`;
    }
    const source = candidates[0]!.source;
    if (source.kind === 'other') return source.why;
    if (source.kind === 'select') return this.output(source.select, column, source.env, depth + 1);
    const found = this.lookup(source.name);
    if (!found) return `it reads ${source.name}, neither a model nor the vault's token map`;
    if ('vault' in found) return column === VAULT_TOKEN_COLUMN ? undefined : `the vault's ${column} is not its person token`;
    for (const sql of found.sqls) {
      const select = parseSelect(sql);
      const why = select ? this.output(select, column, emptyEnv(), depth + 1) : `${source.name} cannot be read`;
      if (why) return why;
    }
    return undefined;
  }

  /** Whether output column `name` of `s` (every arm of a UNION) is the vault's person token. */
  private output(s: Json, name: string, env: Env, depth: number): string | undefined {
    const local = withCtes(s, env);
    if (isSetOp(s)) {
      const at = outputPosition(s, name);
      if (at < 0) return `${name} is not output`;
      return this.outputAt(s.larg as Json, at, local, depth) ?? this.outputAt(s.rarg as Json, at, local, depth);
    }
    const targets = targetsOf(s);
    const named = targets.filter((t) => outputName(t) === name);
    if (named.length === 1) return this.passed(named[0]!, s, local, depth);
    if (named.length > 1) return `${name} is output twice`;
    const stars = targets.filter((t) => starQualifier(t) !== undefined);
    if (stars.length !== 1) return `${name} is not output`;
    const q = starQualifier(stars[0]!)!;
    return this.column(q === '' ? [name] : [q, name], s, local, depth);
  }

  private outputAt(s: Json, at: number, env: Env, depth: number): string | undefined {
    if (isSetOp(s)) return this.outputAt(s.larg as Json, at, withCtes(s, env), depth) ?? this.outputAt(s.rarg as Json, at, withCtes(s, env), depth);
    const target = targetsOf(s)[at];
    return target ? this.passed(target, s, withCtes(s, env), depth) : 'a UNION arm is shorter';
  }

  /** A select item passes the token on only as a plain column reference. */
  private passed(target: Json, s: Json, env: Env, depth: number): string | undefined {
    const val = target.val;
    if (!isObject(val) || !isObject(val.ColumnRef)) return `${outputName(target) ?? 'a column'} is computed, not passed on`;
    return this.column(refFields(val), s, env, depth);
  }
}

function parseSelect(sql: string): Json | undefined {
  try {
    return (parseSync(sql).stmts?.[0]?.stmt as Json | undefined)?.SelectStmt as Json | undefined;
  } catch {
    return undefined;
  }
}

const emptyEnv = (): Env => ({ ctes: new Map() });
const isSetOp = (s: Json): boolean => s.op !== undefined && s.op !== 'SETOP_NONE';
const targetsOf = (s: Json): Json[] => ((s.targetList as unknown[]) ?? []).filter(isObject).map((t) => t.ResTarget as Json);

function withCtes(s: Json, env: Env): Env {
  const w = isObject(s.withClause) ? s.withClause : undefined;
  if (!w) return env;
  const local: Env = { ctes: new Map(), outer: env };
  // A recursive CTE's rows are computed from themselves: not followed (left out of scope, so refused).
  if (w.recursive === true) return local;
  for (const c of ((w.ctes as unknown[]) ?? []).filter(isObject)) {
    const cte = c.CommonTableExpr as Json;
    const body = isObject(cte.ctequery) ? (cte.ctequery.SelectStmt as Json | undefined) : undefined;
    if (typeof cte.ctename === 'string' && body && !cte.aliascolnames) local.ctes.set(cte.ctename.toLowerCase(), { select: body, env: local });
  }
  return local;
}

function lookupCte(env: Env | undefined, name: string): { select: Json; env: Env } | undefined {
  for (let e = env; e; e = e.outer) {
    const found = e.ctes.get(name);
    if (found) return found;
  }
  return undefined;
}

/** The FROM list's items by the name a column may be qualified with (joins flattened). */
function fromItems(list: readonly unknown[], env: Env): { qualifier: string; source: Source }[] {
  const out: { qualifier: string; source: Source }[] = [];
  const visit = (item: unknown): void => {
    if (!isObject(item)) return;
    if (isObject(item.JoinExpr)) {
      if (item.JoinExpr.alias) out.push({ qualifier: '', source: { kind: 'other', why: 'an aliased join cannot be followed' } });
      visit(item.JoinExpr.larg);
      visit(item.JoinExpr.rarg);
      return;
    }
    if (isObject(item.RangeVar)) {
      const rv = item.RangeVar;
      const alias = isObject(rv.alias) ? rv.alias : undefined;
      const name = String(rv.relname ?? '');
      const qualifier = (typeof alias?.aliasname === 'string' ? alias.aliasname : name).toLowerCase();
      if (alias?.colnames) return void out.push({ qualifier, source: { kind: 'other', why: `${qualifier} renames its columns` } });
      const cte = rv.schemaname ? undefined : lookupCte(env, name.toLowerCase());
      const source: Source = cte ? { kind: 'select', ...cte } : { kind: 'relation', name: rv.schemaname ? `${String(rv.schemaname)}.${name}` : name };
      return void out.push({ qualifier, source });
    }
    const sub = isObject(item.RangeSubselect) ? item.RangeSubselect : undefined;
    const alias = isObject(sub?.alias) ? sub.alias : undefined;
    const select = isObject(sub?.subquery) ? (sub.subquery.SelectStmt as Json | undefined) : undefined;
    const qualifier = typeof alias?.aliasname === 'string' ? alias.aliasname.toLowerCase() : '';
    if (select && alias?.colnames) return void out.push({ qualifier, source: { kind: 'other', why: `${qualifier} renames its columns` } });
    if (select) return void out.push({ qualifier, source: { kind: 'select', select, env } });
    out.push({ qualifier, source: { kind: 'other', why: `${qualifier || 'an input'} is not a table, CTE or subquery that can be followed` } });
  };
  list.forEach(visit);
  return out;
}

function refFields(val: Json): string[] {
  const fields = isObject(val.ColumnRef) ? ((val.ColumnRef.fields as unknown[]) ?? []) : [];
  const names = fields.map(sval);
  return names.every((n): n is string => n !== undefined) ? names.map((n) => n.toLowerCase()) : [];
}

/** The name a select item outputs under: its alias, or a plain column's name. */
function outputName(t: Json | undefined): string | undefined {
  if (!t) return undefined;
  if (typeof t.name === 'string') return t.name.toLowerCase();
  return isObject(t.val) ? refFields(t.val).at(-1) : undefined;
}

/** `''` for `*`, `q` for `q.*`, undefined for anything else. */
function starQualifier(t: Json): string | undefined {
  const fields = isObject(t.val) && isObject(t.val.ColumnRef) ? ((t.val.ColumnRef.fields as unknown[]) ?? []) : [];
  if (!fields.some((f) => isObject(f) && 'A_Star' in f)) return undefined;
  return fields.length === 1 ? '' : (sval(fields[0])?.toLowerCase() ?? '');
}

function outputPosition(s: Json, name: string): number {
  if (isSetOp(s)) return outputPosition(s.larg as Json, name);
  return targetsOf(s).findIndex((t) => outputName(t) === name);
}
