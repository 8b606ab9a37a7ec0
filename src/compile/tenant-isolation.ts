/**
 * Whether a tenant-scoped model keeps practices apart when several run in one statement (a
 * batch, DESIGN §6). The runner checks only that every row it writes carries a practice of the
 * batch; which one is the model's doing. `min(p.practice_id) over () as practice_id` labelled
 * every patient of 50 practices as one practice's, a join on `patient_id` alone matches one
 * practice's patient with another's encounters where ids repeat, and a sub-select without the
 * practice reads every practice of the batch. So, in the analysis rendering, every SELECT that
 * reads a tenant-scoped relation must:
 *  - join its tenant-scoped inputs on the tenant column (`a.practice_id = b.practice_id`, in ON,
 *    USING or WHERE), and correlate a sub-select or LATERAL one with the row it serves the same way;
 *  - output the tenant column as a plain column of such an input (not computed, aggregated or
 *    windowed), and use a sub-select or CTE as an input only when it outputs the column too;
 *  - partition every window by it (a group across practices cannot output it plainly);
 *  - limit, DISTINCT ON and group by grouping sets only with it (or where matched to one row's practice).
 * Pure: the WebAssembly parser only (model-sql.ts has loaded it).
 */
import { parseSync } from 'libpg-query';
import { elements, isObject, sval, type PgJson as Json } from './pg-tree.ts';
import { ownClauses } from './select-scope.ts';
import { aliasColumns, isOwnTenantColumn, renamed, selectOutputs, UnionFind, type Items, type Source } from './select-outputs.ts';
import { fromItemNames, functionColumns } from './relation-columns.ts';

export interface IsolationInput {
  sql: string;
  tenantColumn: string;
  /** Unquoted reserved names of the tenant-scoped relations the model reads (and its own `this`). */
  tenantRelations: ReadonlySet<string>;
  /** Columns, in order and lower case, of the other relations it reads whose columns are known (seeds). */
  relationColumns?: ReadonlyMap<string, readonly string[]>;
  /** Names of the columns of the relations it reads, by lower-case name, where known (relation-columns.ts). */
  columnNames?: ReadonlyMap<string, readonly string[]>;
}

export interface IsolationFinding {
  message: string;
  /** A word to find the line by. */
  near?: string;
}

interface Scope {
  ctes: ReadonlyMap<string, Source>;
  /** Aliases of the enclosing query's tenant-scoped items, for correlation. */
  outer: ReadonlySet<string>;
}

const OUTER = '\u0000outer';
/**
 * Names the check gives unaliased FROM items: no alias can hold NUL, so `"subquery 1"` cannot
 * take an unaliased sub-select's place (it did: the sub-select over practices left the check).
 */
const SYNTHETIC = '\u0000';

export function tenantIsolationFindings(input: IsolationInput): IsolationFinding[] {
  let stmt: Json | undefined;
  try {
    stmt = (parseSync(input.sql).stmts?.[0]?.stmt as Json | undefined)?.SelectStmt as Json | undefined;
  } catch {
    return []; // model-sql.ts reports what the grammar cannot read
  }
  if (!stmt) return [];
  const a = new Analysis(input.tenantColumn.toLowerCase(), input.tenantRelations, input.relationColumns ?? new Map(), input.columnNames ?? new Map());
  a.select(stmt, { ctes: new Map(), outer: new Set() }, false);
  const seen = new Set<string>();
  return a.findings
    .map((f) => ({ ...f, message: f.message.replaceAll(SYNTHETIC, '') }))
    .filter((f) => (seen.has(f.message) ? false : (seen.add(f.message), true)));
}

class Analysis {
  readonly findings: IsolationFinding[] = [];
  private readonly report = (f: IsolationFinding) => this.findings.push(f);
  constructor(
    private readonly tc: string,
    private readonly tenantRelations: ReadonlySet<string>,
    private readonly relationColumns: ReadonlyMap<string, readonly string[]>,
    private readonly columnNames: ReadonlyMap<string, readonly string[]>,
  ) {}
  /** FROM items whose column names are not known, which hid outer aliases from a sub-select. */
  private readonly opaque = new Set<string>();

  /** `correlated`: a sub-select or LATERAL item, which must match the practice of the row it serves. */
  select(s: Json, scope: Scope, correlated: boolean): Source {
    const ctes = new Map(scope.ctes);
    const w = s.withClause as Json | undefined;
    for (const c of ((w?.ctes as unknown[]) ?? []).filter(isObject).map((x) => x.CommonTableExpr as Json)) {
      const body = isObject(c.ctequery) ? (c.ctequery.SelectStmt as Json | undefined) : undefined;
      const name = String(c.ctename ?? '').toLowerCase();
      // A recursive CTE reads itself: seen as tenant-scoped and labelled until its body says otherwise.
      if (w?.recursive === true) ctes.set(name, { tenant: true, labelled: true });
      if (body) ctes.set(name, this.aliased(this.select(body, { ctes, outer: new Set() }, false), aliasColumns({ colnames: c.aliascolnames }), name));
    }
    if (s.op !== undefined && s.op !== 'SETOP_NONE') {
      const l = this.select((s.larg as Json) ?? {}, { ctes, outer: scope.outer }, correlated);
      const r = this.select((s.rarg as Json) ?? {}, { ctes, outer: scope.outer }, correlated);
      if (!correlated && (l.tenant || r.tenant)) this.limits(s);
      return this.setOperation(l, r);
    }
    const items: Items = { byAlias: new Map(), links: new UnionFind(), merged: new Map() };
    const inner: Scope = { ctes, outer: scope.outer };
    for (const f of (s.fromClause as unknown[]) ?? []) this.fromItem(f, inner, items);
    const tenantItems = [...items.byAlias].filter(([, v]) => v.tenant).map(([k]) => k);
    const ownItems = [...items.byAlias].filter(([, v]) => v.tenant && v.labelled).map(([k]) => k);
    const visibleOuter = this.seenFrom(scope.outer, items, []);
    this.equalities(s.whereClause, ownItems, visibleOuter, items.links);
    const here: Scope = { ctes, outer: new Set([...visibleOuter, ...ownItems]) };
    // Every clause, VALUES rows and LIMIT included: a sub-select anywhere may read practices.
    const subTenant = this.subLinks(ownClauses(s), here);
    // No input of its own, but a sub-select over practices (`values ((select string_agg(ssn, ',') …))`):
    // its rows carry practices' values without a practice, and no column of theirs is a row's own practice.
    if (tenantItems.length === 0) return { tenant: subTenant, labelled: false, outputs: selectOutputs(s, items, this.tc, subTenant, this.report).outputs };

    // Alone, an unlabelled input gives rows no practice to carry (the runner refuses them); beside
    // another, it meets that one's practices with no way to match them.
    for (const [alias, src] of items.byAlias) {
      if (src.tenant && !src.labelled && tenantItems.length > 1) this.findings.push({ message: `reads ${alias}, which holds practices' rows without its own ${this.tc} column, so rows of every practice in a batch mix`, near: alias });
    }
    const root = items.links.find(tenantItems[0]!);
    const apart = tenantItems.filter((t) => items.links.find(t) !== root);
    if (apart.length > 0) this.findings.push({ message: `joins ${apart.join(', ')} to ${tenantItems[0]} without equal ${this.tc} (ON a.${this.tc} = b.${this.tc}), so one practice's rows meet another's in a batch`, near: apart[0] });
    if (correlated && items.links.find(OUTER) !== root) {
      const why = this.opaque.size > 0 ? `; the columns of ${[...this.opaque].join(', ')} are not known here, and DuckDB binds outer.${this.tc} to a nested column named like the outer alias before the alias (list those columns in the models that build them instead of *)` : '';
      this.findings.push({ message: `has a sub-select or LATERAL item reading ${tenantItems.join(', ')} that is not matched to its row's ${this.tc} (add … AND x.${this.tc} = outer.${this.tc}), so it reads every practice of a batch${why}`, near: tenantItems[0] });
    }
    this.windows(s, items);
    // Matched to one row's practice, a sub-select's LIMIT or DISTINCT ON acts on that practice alone.
    if (!correlated) this.wholeResult(s, items);
    // A group across practices cannot output a plain tenant column (the engines refuse it), so
    // it is either unlabelled (above, and the runner) or labels with a computed one (below).
    const { outputs, labelled } = selectOutputs(s, items, this.tc, true, this.report);
    return { tenant: true, labelled, outputs };
  }

  /**
   * A UNION, INTERSECT or EXCEPT matches its arms' columns by position and takes its names from
   * the first arm: every arm that reads practices must put its own practice where that arm has
   * the tenant column (`select e.practice_id, … union all select 'p_x', …` labelled every row of
   * the second arm as one practice's).
   */
  private setOperation(l: Source, r: Source): Source {
    const tenant = l.tenant || r.tenant;
    const nameLabelled = (!l.tenant || l.labelled) && (!r.tenant || r.labelled);
    if (!tenant) return { tenant, labelled: false, outputs: l.outputs };
    if (!l.outputs || !r.outputs) {
      this.findings.push({ message: `has a UNION, INTERSECT or EXCEPT over practices' rows with * in an arm; arms are matched by position, so list each arm's columns to show where its own ${this.tc} is`, near: '*' });
      return { tenant, labelled: nameLabelled };
    }
    const arms = [l, r];
    const outputs = l.outputs.map((o, i) => ({ name: o.name, own: arms.every((a) => !a.tenant || a.outputs![i]?.own === true) }));
    const at = outputs.findIndex((o) => o.name === this.tc);
    if (at >= 0 && !outputs[at]!.own) {
      this.findings.push({ message: `has a UNION, INTERSECT or EXCEPT whose arms do not all have their own ${this.tc} in column ${at + 1}, where the first arm has ${this.tc} (arms are matched by position, not by name), so a row can carry another practice of the batch`, near: this.tc });
    }
    return { tenant, labelled: at >= 0 && outputs[at]!.own, outputs };
  }

  /** A CTE's or FROM item's column-alias list renames its columns by position. */
  private aliased(src: Source, names: readonly string[], alias: string): Source {
    if (names.length === 0) return src;
    if (!src.outputs) {
      if (src.tenant) this.findings.push({ message: `renames the columns of ${alias} by position (${alias}(${names.join(', ')})) over a relation whose column order is not known here; rename them in a select list instead`, near: alias });
      return { tenant: src.tenant, labelled: false };
    }
    const outputs = renamed(src.outputs, names);
    return { tenant: src.tenant, labelled: src.tenant && outputs.some((o) => o.name === this.tc && o.own), outputs };
  }

  private fromItem(f: unknown, scope: Scope, items: Items): void {
    if (!isObject(f)) return;
    if (isObject(f.RangeVar)) {
      const rv = f.RangeVar;
      const name = String(rv.relname ?? '').toLowerCase();
      const alias = (isObject(rv.alias) ? String(rv.alias.aliasname ?? '') : name).toLowerCase();
      const cte = rv.schemaname ? undefined : scope.ctes.get(name);
      const tenant = this.tenantRelations.has(name);
      const known = this.relationColumns.get(name);
      const src = cte ?? { tenant, labelled: tenant, outputs: tenant || !known ? undefined : known.map((c) => ({ name: c, own: false })), columns: this.columnNames.get(name) };
      items.byAlias.set(alias, this.aliased(src, aliasColumns(rv.alias), alias));
    } else if (isObject(f.RangeSubselect)) {
      const rs = f.RangeSubselect;
      const alias = isObject(rs.alias) ? String(rs.alias.aliasname ?? '').toLowerCase() : `${SYNTHETIC}subquery ${items.byAlias.size + 1}`;
      const body = isObject(rs.subquery) ? (rs.subquery.SelectStmt as Json | undefined) : undefined;
      if (!body) return;
      // LATERAL sees the items before it: it must match their practice like a sub-select.
      const lateral = rs.lateral === true;
      const before = [...items.byAlias].filter(([, v]) => v.tenant && v.labelled).map(([k]) => k);
      const src = this.aliased(this.select(body, { ctes: scope.ctes, outer: lateral ? this.seenFrom(scope.outer, items, before) : scope.outer }, lateral && before.length > 0), aliasColumns(rs.alias), alias);
      // Matched to the row it serves, a LATERAL item adds no practice's rows of its own; none of its columns is a row's practice.
      items.byAlias.set(alias, lateral && before.length > 0 ? { tenant: false, labelled: false, outputs: src.outputs?.map((o) => ({ name: o.name, own: false })) } : src);
    } else if (isObject(f.JoinExpr)) {
      const j = f.JoinExpr;
      const had = new Set(items.byAlias.keys());
      this.fromItem(j.larg, scope, items);
      const left = [...items.byAlias.keys()].filter((a) => !had.has(a));
      this.fromItem(j.rarg, scope, items);
      const right = [...items.byAlias.keys()].filter((a) => !had.has(a) && !left.includes(a));
      const labelled = (aliases: readonly string[]) => aliases.filter((a) => items.byAlias.get(a)!.tenant && items.byAlias.get(a)!.labelled);
      const tenantItems = [...items.byAlias].filter(([, v]) => v.tenant && v.labelled).map(([k]) => k);
      const using = ((j.usingClause as unknown[]) ?? []).map((u) => sval(u)?.toLowerCase());
      if (using.includes(this.tc) || j.isNatural === true) {
        // USING (practice_id): one practice_id for the join's two sides, and for no item before
        // them (`from p, o natural join x` matched o with x alone, and p's practices met o's).
        const sides = [labelled(left), labelled(right)];
        if (sides.every((side) => side.length > 0)) for (const t of sides.flat()) items.links.union(t, sides[0]![0]!);
        const group = new Set([...left, ...right]);
        for (const a of group) items.merged.set(a, group);
      }
      if (isObject(j.alias)) {
        // `(a cross join b) AS j` hides a and b: `a.x` inside a sub-select then names an outer `a`.
        this.findings.push({ message: `aliases a join (… ) AS ${String(j.alias.aliasname ?? '')}, which hides the names of the relations in it; alias those relations instead`, near: String(j.alias.aliasname ?? '') });
      }
      const outer = this.seenFrom(scope.outer, items, []);
      // Only the join's own items: DuckDB lets an inner join nested in an outer join's optional side
      // name items outside it (`left join (e join z on e.practice_id = p.practice_id and
      // e.practice_id = o.practice_id) on true` kept every p beside every o).
      this.equalities(j.quals, labelled([...left, ...right]), outer, items.links, keptRows(String(j.jointype), left, right, tenantItems));
      // An ON sub-select over practices with no practice of the join to match (`on exists (select
      // … from stg_patients o where substr(o.ssn, g.i, 1) = d.ch)`) reads every practice of the batch.
      const onReads = this.subLinks([j.quals], { ctes: scope.ctes, outer: this.seenFrom(scope.outer, items, tenantItems) });
      if (onReads && tenantItems.length === 0) items.byAlias.set(`${SYNTHETIC}join condition ${items.byAlias.size + 1}`, { tenant: true, labelled: false });
    } else if (isObject(f.RangeFunction)) {
      // unnest(…), generate_series(…): its own rows read no practice, but a sub-select in its
      // arguments does, and like a LATERAL item it must match the practice of the items before it.
      const before = [...items.byAlias].filter(([, v]) => v.tenant && v.labelled).map(([k]) => k);
      const alias = isObject(f.RangeFunction.alias) ? String(f.RangeFunction.alias.aliasname ?? '').toLowerCase() : `${SYNTHETIC}function ${items.byAlias.size + 1}`;
      const reads = this.subLinks([f.RangeFunction.functions], { ctes: scope.ctes, outer: this.seenFrom(scope.outer, items, before) }, true);
      const names = aliasColumns(f.RangeFunction.alias);
      items.byAlias.set(alias, { tenant: reads && before.length === 0, labelled: false, outputs: names.length > 0 ? names.map((n) => ({ name: n, own: false })) : undefined, columns: functionColumns(f.RangeFunction.functions, names) });
    } else {
      // TABLESAMPLE, XMLTABLE, JSON_TABLE, …: what it reads cannot be followed here.
      this.findings.push({ message: `reads a FROM item (${Object.keys(f)[0] ?? 'unknown'}) whose practices cannot be checked; use a table, CTE or subquery` });
    }
  }

  /**
   * The aliases a sub-select of this FROM may name outside itself: the outer ones not hidden by an
   * item here, and `visible`. A column of an item here hides an outer alias too: DuckDB binds
   * `p.practice_id` to the field of a nested column `p` (STRUCT, MAP, UNION, JSON) before an outer `p`
   * (`struct_pack(practice_id := q.practice_id) AS p` in a derived table or an upstream model made
   * `o.practice_id = p.practice_id` always true). So an item whose column names are not known
   * hides every outer alias, and so does an alias that is not a plain name. JSON columns bind alike.
   */
  private seenFrom(outer: ReadonlySet<string>, items: Items, visible: readonly string[]): Set<string> {
    const named = [...items.byAlias].map(([alias, v]) => [alias, fromItemNames(v)] as const);
    const opaque = named.filter(([, names]) => names === undefined).map(([alias]) => alias.replaceAll(SYNTHETIC, ''));
    if (opaque.length > 0 && outer.size > 0) for (const o of opaque) this.opaque.add(o);
    const columns = new Set(named.flatMap(([, names]) => names ?? []));
    const seen = opaque.length > 0 ? [] : [...outer].filter((o) => PLAIN.test(o) && !items.byAlias.has(o) && !columns.has(o));
    return new Set([...seen, ...visible]);
  }

  /** `a.tc = b.tc` among the AND-ed conditions of `node`. */
  private equalities(node: unknown, items: readonly string[], outer: ReadonlySet<string>, links: UnionFind, filters: EqualityFilters = () => true): void {
    if (!isObject(node)) return;
    if (isObject(node.BoolExpr) && node.BoolExpr.boolop === 'AND_EXPR') {
      for (const arg of (node.BoolExpr.args as unknown[]) ?? []) this.equalities(arg, items, outer, links, filters);
      return;
    }
    const e = isObject(node.A_Expr) ? node.A_Expr : undefined;
    if (!e || e.kind !== 'AEXPR_OP' || sval(((e.name as unknown[]) ?? [])[0]) !== '=') return;
    const l = this.tenantColumnOf(e.lexpr, items, outer);
    const r = this.tenantColumnOf(e.rexpr, items, outer);
    if (l && r && filters(l, r, links)) links.union(l, r);
  }

  /** The item (or OUTER) whose tenant column `x` is, when `x` is `alias.tc`. */
  private tenantColumnOf(x: unknown, items: readonly string[], outer: ReadonlySet<string>): string | undefined {
    const fields = isObject(x) && isObject(x.ColumnRef) ? ((x.ColumnRef.fields as unknown[]) ?? []).map((f) => sval(f)?.toLowerCase()) : [];
    if (fields.length !== 2 || fields[1] !== this.tc) return undefined;
    const alias = fields[0]!;
    if (items.includes(alias)) return alias;
    return outer.has(alias) ? OUTER : undefined;
  }

  /** Every window of this SELECT (not of its sub-selects) is partitioned by the tenant column. */
  private windows(s: Json, items: Items): void {
    const check = (wd: Json) => {
      if (wd.refname) return; // a named window: checked where it is defined
      if (!((wd.partitionClause as unknown[]) ?? []).some((p) => isOwnTenantColumn(p, items, this.tc))) {
        this.findings.push({ message: `has a window not partitioned by ${this.tc}, which spans every practice of a batch (PARTITION BY ${this.tc})`, near: 'over' });
      }
    };
    for (const w of (s.windowClause as unknown[]) ?? []) if (isObject(w) && isObject(w.WindowDef)) check(w.WindowDef);
    const visit = (n: unknown): void => {
      if (Array.isArray(n)) return n.forEach(visit);
      if (!isObject(n)) return;
      for (const [k, v] of Object.entries(n)) {
        if (k === 'SelectStmt') continue;
        if (k === 'FuncCall' && isObject(v) && isObject(v.over)) check(v.over);
        visit(v);
      }
    };
    visit(Object.entries(s).filter(([k]) => k !== 'windowClause').map(([, v]) => v)); // every clause: DuckDB takes one in DISTINCT ON
  }

  /**
   * Clauses that act on a SELECT's whole result: over a batch they act on every practice's rows
   * together, so which of a practice's rows survive depends on the other practices' rows (and
   * differs from the practice built alone). LIMIT/OFFSET/FETCH; DISTINCT ON without the tenant
   * column; ROLLUP, CUBE or a grouping set without it (a total over the batch's practices).
   */
  private wholeResult(s: Json, items: Items): void {
    this.limits(s);
    const distinctOn = ((s.distinctClause as unknown[]) ?? []).filter((d) => isObject(d) && Object.keys(d).length > 0);
    if (distinctOn.length > 0 && !distinctOn.some((d) => isOwnTenantColumn(d, items, this.tc))) {
      this.findings.push({ message: `has DISTINCT ON without ${this.tc}, which keeps one row per value across every practice of a batch (DISTINCT ON (${this.tc}, …))`, near: 'distinct' });
    }
    const keys = ((s.groupClause as unknown[]) ?? []).filter(isObject);
    const sets = keys.filter((k) => isObject(k.GroupingSet)).map((k) => k.GroupingSet as Json);
    if (sets.length === 0 || keys.some((k) => !isObject(k.GroupingSet) && isOwnTenantColumn(k, items, this.tc))) return;
    const holdsTenant = (x: unknown): boolean => {
      if (!isObject(x)) return false;
      if (isObject(x.RowExpr)) return ((x.RowExpr.args as unknown[]) ?? []).some((a) => isOwnTenantColumn(a, items, this.tc));
      if (isObject(x.GroupingSet)) return x.GroupingSet.kind === 'GROUPING_SET_SIMPLE' && ((x.GroupingSet.content as unknown[]) ?? []).some((a) => isOwnTenantColumn(a, items, this.tc));
      return isOwnTenantColumn(x, items, this.tc);
    };
    const mixes = sets.some((g) => g.kind !== 'GROUPING_SET_SETS' || !((g.content as unknown[]) ?? []).every(holdsTenant));
    if (mixes) {
      this.findings.push({ message: `groups by ROLLUP, CUBE or GROUPING SETS with a set that lacks ${this.tc}, a total over every practice of a batch (keep ${this.tc} a plain GROUP BY key beside them)`, near: 'group by' });
    }
  }

  private limits(s: Json): void {
    if (s.limitCount || s.limitOffset) {
      this.findings.push({ message: `has LIMIT, OFFSET or FETCH, which over a batch counts every practice's rows together, not each practice's (filter on row_number() over (partition by ${this.tc} order by …) instead)`, near: s.limitCount ? 'limit' : 'offset' });
    }
  }

  /** Where `(x.practice_id, …) IN (select …)` puts the outer practice in the sub-select's columns, or -1. */
  private inOnTenantColumn(link: Json, body: Json, scope: Scope): number {
    if (link.subLinkType !== 'ANY_SUBLINK') return -1;
    const left = elements(link.testexpr);
    const targets = ((body.targetList as unknown[]) ?? []).filter(isObject).map((r) => (r.ResTarget as Json).val);
    return left.findIndex((l, i) => {
      const bare = isObject(l) && isObject(l.ColumnRef) && ((l.ColumnRef.fields as unknown[]) ?? []).length === 1 && sval((l.ColumnRef.fields as unknown[])[0])?.toLowerCase() === this.tc;
      const outerSide = bare || this.tenantColumnOf(l, [], scope.outer) !== undefined;
      const fields = isObject(targets[i]) && isObject((targets[i] as Json).ColumnRef) ? (((targets[i] as Json).ColumnRef as Json).fields as unknown[]) : [];
      return outerSide && sval(fields.at(-1))?.toLowerCase() === this.tc;
    });
  }

  /**
   * Sub-selects in expressions: each must match its row's practice (`correlated`: even with no
   * input before it to match). Whether any of them reads practices' rows.
   */
  private subLinks(nodes: unknown[], scope: Scope, correlated = false): boolean {
    let tenant = false;
    const visit = (n: unknown): void => {
      if (Array.isArray(n)) return n.forEach(visit);
      if (!isObject(n)) return;
      for (const [k, v] of Object.entries(n)) {
        if (k === 'SubLink' && isObject(v)) {
          const body = isObject(v.subselect) ? (v.subselect.SelectStmt as Json | undefined) : undefined;
          // `(x.practice_id, …) IN (select e.practice_id, …)` matches the practice as a correlation
          // does, when that column is the sub-select's own practice: an outer row's (`select
          // p.practice_id as k … where substr(x.ssn, g.i, 1) = d.ch`), a seed's or a constant
          // matched every row and read every practice of the batch.
          const at = body && scope.outer.size > 0 ? this.inOnTenantColumn(v, body, scope) : -1;
          if (body && at >= 0) {
            const src = this.select(body, scope, correlated);
            if (src.tenant && src.outputs?.[at]?.own !== true) {
              this.findings.push({ message: `matches its row's ${this.tc} with IN (…) over a sub-select whose column ${at + 1} is not that sub-select's own ${this.tc} (an outer row's, a seed's or a constant), so the sub-select reads every practice of a batch`, near: this.tc });
            }
            tenant = src.tenant || tenant;
          } else if (body) tenant = this.select(body, scope, correlated || scope.outer.size > 0).tenant || tenant;
          visit(v.testexpr);
          continue;
        }
        if (k === 'SelectStmt') continue;
        visit(v);
      }
    };
    visit(nodes);
    return tenant;
  }
}

/** Whether an equality of two items' tenant columns (or OUTER, the row a sub-select serves) may link them. */
type EqualityFilters = (a: string, b: string, links: UnionFind) => boolean;

/**
 * An outer join's ON removes no row of the side it keeps: `p cross join o left join x ON
 * o.practice_id = p.practice_id` kept every o of the batch beside every p. So there an equality
 * links an item of the side that loses rows with one kept item (or the outer row) at most: two
 * kept items equal to the same nullable one (`left join e on e.practice_id = o.practice_id and
 * e.practice_id = p.practice_id`) are still every pair of o and p where e does not match. A FULL
 * join keeps both sides, so none of its equalities links anything. An inner join's ON is a WHERE.
 */
function keptRows(joinType: string, left: readonly string[], right: readonly string[], items: readonly string[]): EqualityFilters {
  if (joinType !== 'JOIN_LEFT' && joinType !== 'JOIN_RIGHT' && joinType !== 'JOIN_FULL') return () => true;
  const nullable = (a: string) => (joinType === 'JOIN_LEFT' ? right.includes(a) : joinType === 'JOIN_RIGHT' ? left.includes(a) : false);
  // A component holds a kept item when any of its members is not of the nullable side.
  const kept = (a: string, links: UnionFind) => [...items, OUTER].some((i) => !nullable(i) && links.find(i) === links.find(a));
  return (a, b, links) => !(kept(a, links) && kept(b, links));
}

/** An alias DuckDB cannot mistake for a column it names after an expression's text (`CAST(p AS …)`). */
const PLAIN = /^[a-z_][a-z0-9_$]*$/;

