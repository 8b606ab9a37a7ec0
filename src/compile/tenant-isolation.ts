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
import { isObject, sval, type PgJson as Json } from './pg-tree.ts';
import { ownClauses } from './select-scope.ts';

export interface IsolationInput {
  sql: string;
  tenantColumn: string;
  /** Unquoted reserved names of the tenant-scoped relations the model reads (and its own `this`). */
  tenantRelations: ReadonlySet<string>;
}

export interface IsolationFinding {
  message: string;
  /** A word to find the line by. */
  near?: string;
}

/** What a FROM item, CTE or sub-select gives its reader. */
interface Source {
  /** It reads practices' rows. */
  tenant: boolean;
  /** It outputs the tenant column as each row's own practice. */
  labelled: boolean;
}

interface Scope {
  ctes: ReadonlyMap<string, Source>;
  /** Aliases of the enclosing query's tenant-scoped items, for correlation. */
  outer: ReadonlySet<string>;
}

const OUTER = '\u0000outer';

export function tenantIsolationFindings(input: IsolationInput): IsolationFinding[] {
  let stmt: Json | undefined;
  try {
    stmt = (parseSync(input.sql).stmts?.[0]?.stmt as Json | undefined)?.SelectStmt as Json | undefined;
  } catch {
    return []; // model-sql.ts reports what the grammar cannot read
  }
  if (!stmt) return [];
  const a = new Analysis(input.tenantColumn.toLowerCase(), input.tenantRelations);
  a.select(stmt, { ctes: new Map(), outer: new Set() }, false);
  const seen = new Set<string>();
  return a.findings.filter((f) => (seen.has(f.message) ? false : (seen.add(f.message), true)));
}

class Analysis {
  readonly findings: IsolationFinding[] = [];
  constructor(
    private readonly tc: string,
    private readonly tenantRelations: ReadonlySet<string>,
  ) {}

  /** `correlated`: a sub-select or LATERAL item, which must match the practice of the row it serves. */
  select(s: Json, scope: Scope, correlated: boolean): Source {
    const ctes = new Map(scope.ctes);
    const w = s.withClause as Json | undefined;
    for (const c of ((w?.ctes as unknown[]) ?? []).filter(isObject).map((x) => x.CommonTableExpr as Json)) {
      const body = isObject(c.ctequery) ? (c.ctequery.SelectStmt as Json | undefined) : undefined;
      const name = String(c.ctename ?? '').toLowerCase();
      // A recursive CTE reads itself: seen as tenant-scoped and labelled until its body says otherwise.
      if (w?.recursive === true) ctes.set(name, { tenant: true, labelled: true });
      if (body) ctes.set(name, this.select(body, { ctes, outer: new Set() }, false));
    }
    if (s.op !== undefined && s.op !== 'SETOP_NONE') {
      const l = this.select((s.larg as Json) ?? {}, { ctes, outer: scope.outer }, correlated);
      const r = this.select((s.rarg as Json) ?? {}, { ctes, outer: scope.outer }, correlated);
      if (!correlated && (l.tenant || r.tenant)) this.limits(s);
      return { tenant: l.tenant || r.tenant, labelled: (!l.tenant || l.labelled) && (!r.tenant || r.labelled) };
    }
    const items = new Map<string, Source>();
    const links = new UnionFind();
    const inner: Scope = { ctes, outer: scope.outer };
    for (const f of (s.fromClause as unknown[]) ?? []) this.fromItem(f, inner, items, links);
    const tenantItems = [...items].filter(([, v]) => v.tenant).map(([k]) => k);
    const visibleOuter = new Set([...scope.outer].filter((o) => !items.has(o)));
    this.equalities(s.whereClause, tenantItems, visibleOuter, links);
    const here: Scope = { ctes, outer: new Set([...visibleOuter, ...tenantItems]) };
    // Every clause, VALUES rows and LIMIT included: a sub-select anywhere may read practices.
    const subTenant = this.subLinks(ownClauses(s), here);
    // No input of its own, but a sub-select over practices (`values ((select string_agg(ssn, ',') …))`):
    // its rows carry practices' values without a practice.
    if (tenantItems.length === 0) return { tenant: subTenant, labelled: false };

    // Alone, an unlabelled input gives rows no practice to carry (the runner refuses them); beside
    // another, it meets that one's practices with no way to match them.
    for (const [alias, src] of items) {
      if (src.tenant && !src.labelled && tenantItems.length > 1) this.findings.push({ message: `reads ${alias}, which holds practices' rows without its own ${this.tc} column, so rows of every practice in a batch mix`, near: alias });
    }
    const root = links.find(tenantItems[0]!);
    const apart = tenantItems.filter((t) => links.find(t) !== root);
    if (apart.length > 0) this.findings.push({ message: `joins ${apart.join(', ')} to ${tenantItems[0]} without equal ${this.tc} (ON a.${this.tc} = b.${this.tc}), so one practice's rows meet another's in a batch`, near: apart[0] });
    if (correlated && links.find(OUTER) !== root) {
      this.findings.push({ message: `has a sub-select or LATERAL item reading ${tenantItems.join(', ')} that is not matched to its row's ${this.tc} (add … AND x.${this.tc} = outer.${this.tc}), so it reads every practice of a batch`, near: tenantItems[0] });
    }
    this.windows(s, tenantItems);
    // Matched to one row's practice, a sub-select's LIMIT or DISTINCT ON acts on that practice alone.
    if (!correlated) this.wholeResult(s, tenantItems);
    // A group across practices cannot output a plain tenant column (the engines refuse it), so
    // it is either unlabelled (above, and the runner) or labels with a computed one (below).
    return { tenant: true, labelled: this.outputsTenantColumn(s, tenantItems, items) };
  }

  private fromItem(f: unknown, scope: Scope, items: Map<string, Source>, links: UnionFind): void {
    if (!isObject(f)) return;
    if (isObject(f.RangeVar)) {
      const rv = f.RangeVar;
      const name = String(rv.relname ?? '').toLowerCase();
      const alias = (isObject(rv.alias) ? String(rv.alias.aliasname ?? '') : name).toLowerCase();
      const cte = rv.schemaname ? undefined : scope.ctes.get(name);
      items.set(alias, cte ?? { tenant: this.tenantRelations.has(name), labelled: this.tenantRelations.has(name) });
    } else if (isObject(f.RangeSubselect)) {
      const rs = f.RangeSubselect;
      const alias = isObject(rs.alias) ? String(rs.alias.aliasname ?? '').toLowerCase() : `subquery ${items.size + 1}`;
      const body = isObject(rs.subquery) ? (rs.subquery.SelectStmt as Json | undefined) : undefined;
      if (!body) return;
      // LATERAL sees the items before it: it must match their practice like a sub-select.
      const lateral = rs.lateral === true;
      const before = [...items].filter(([, v]) => v.tenant).map(([k]) => k);
      const src = this.select(body, { ctes: scope.ctes, outer: lateral ? new Set([...scope.outer, ...before]) : scope.outer }, lateral && before.length > 0);
      items.set(alias, lateral && before.length > 0 ? { tenant: false, labelled: false } : src);
    } else if (isObject(f.JoinExpr)) {
      const j = f.JoinExpr;
      this.fromItem(j.larg, scope, items, links);
      this.fromItem(j.rarg, scope, items, links);
      const tenantItems = [...items].filter(([, v]) => v.tenant).map(([k]) => k);
      const using = ((j.usingClause as unknown[]) ?? []).map((u) => sval(u)?.toLowerCase());
      if (using.includes(this.tc) || j.isNatural === true) {
        // USING (practice_id): one practice_id for both sides.
        for (const t of tenantItems) links.union(t, tenantItems[0]!);
      }
      this.equalities(j.quals, tenantItems, new Set([...scope.outer].filter((o) => !items.has(o))), links);
      this.subLinks([j.quals], { ctes: scope.ctes, outer: new Set([...scope.outer, ...tenantItems]) });
    } else if (isObject(f.RangeFunction)) {
      // unnest(…), generate_series(…): its own rows read no practice, but a sub-select in its
      // arguments does, and like a LATERAL item it must match the practice of the items before it.
      const before = [...items].filter(([, v]) => v.tenant).map(([k]) => k);
      const alias = isObject(f.RangeFunction.alias) ? String(f.RangeFunction.alias.aliasname ?? '').toLowerCase() : `function ${items.size + 1}`;
      const reads = this.subLinks([f.RangeFunction.functions], { ctes: scope.ctes, outer: new Set([...scope.outer, ...before]) }, true);
      items.set(alias, { tenant: reads && before.length === 0, labelled: false });
    } else {
      // TABLESAMPLE, XMLTABLE, JSON_TABLE, …: what it reads cannot be followed here.
      this.findings.push({ message: `reads a FROM item (${Object.keys(f)[0] ?? 'unknown'}) whose practices cannot be checked; use a table, CTE or subquery` });
    }
  }

  /** `a.tc = b.tc` among the AND-ed conditions of `node`. */
  private equalities(node: unknown, items: readonly string[], outer: ReadonlySet<string>, links: UnionFind): void {
    if (!isObject(node)) return;
    if (isObject(node.BoolExpr) && node.BoolExpr.boolop === 'AND_EXPR') {
      for (const arg of (node.BoolExpr.args as unknown[]) ?? []) this.equalities(arg, items, outer, links);
      return;
    }
    const e = isObject(node.A_Expr) ? node.A_Expr : undefined;
    if (!e || e.kind !== 'AEXPR_OP' || sval(((e.name as unknown[]) ?? [])[0]) !== '=') return;
    const l = this.tenantColumnOf(e.lexpr, items, outer);
    const r = this.tenantColumnOf(e.rexpr, items, outer);
    if (l && r) links.union(l, r);
  }

  /** The item (or OUTER) whose tenant column `x` is, when `x` is `alias.tc`. */
  private tenantColumnOf(x: unknown, items: readonly string[], outer: ReadonlySet<string>): string | undefined {
    const fields = isObject(x) && isObject(x.ColumnRef) ? ((x.ColumnRef.fields as unknown[]) ?? []).map((f) => sval(f)?.toLowerCase()) : [];
    if (fields.length !== 2 || fields[1] !== this.tc) return undefined;
    const alias = fields[0]!;
    if (items.includes(alias)) return alias;
    return outer.has(alias) ? OUTER : undefined;
  }

  private isTenantColumn(x: unknown, items: readonly string[]): boolean {
    const fields = isObject(x) && isObject(x.ColumnRef) ? ((x.ColumnRef.fields as unknown[]) ?? []).map((f) => sval(f)?.toLowerCase()) : [];
    if (fields.length === 1) return fields[0] === this.tc;
    return fields.length === 2 && fields[1] === this.tc && items.includes(fields[0]!);
  }

  private outputsTenantColumn(s: Json, tenantItems: readonly string[], items: ReadonlyMap<string, Source>): boolean {
    const targets = ((s.targetList as unknown[]) ?? []).filter(isObject).map((r) => r.ResTarget as Json);
    for (const t of targets) {
      const fields = isObject(t.val) && isObject(t.val.ColumnRef) ? ((t.val.ColumnRef.fields as unknown[]) ?? []) : [];
      const star = fields.length > 0 && isObject(fields.at(-1)) && 'A_Star' in (fields.at(-1) as Json);
      if (star) {
        const alias = fields.length === 2 ? sval(fields[0])?.toLowerCase() : undefined;
        if (alias === undefined ? tenantItems.length > 0 : items.get(alias)?.labelled === true) return true;
        continue;
      }
      const name = (typeof t.name === 'string' ? t.name : sval(fields.at(-1)))?.toLowerCase();
      if (name !== this.tc) continue;
      if (this.isTenantColumn(t.val, tenantItems)) return true;
      this.findings.push({ message: `computes its ${this.tc} instead of passing on its input row's, so a row can carry another practice of the batch`, near: this.tc });
      return true;
    }
    return false;
  }

  /** Every window of this SELECT (not of its sub-selects) is partitioned by the tenant column. */
  private windows(s: Json, tenantItems: readonly string[]): void {
    const check = (wd: Json) => {
      if (wd.refname) return; // a named window: checked where it is defined
      if (!((wd.partitionClause as unknown[]) ?? []).some((p) => this.isTenantColumn(p, tenantItems))) {
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
    visit([s.targetList, s.sortClause, s.havingClause]);
  }

  /**
   * Clauses that act on a SELECT's whole result: over a batch they act on every practice's rows
   * together, so which of a practice's rows survive depends on the other practices' rows (and
   * differs from the practice built alone). LIMIT/OFFSET/FETCH; DISTINCT ON without the tenant
   * column; ROLLUP, CUBE or a grouping set without it (a total over the batch's practices).
   */
  private wholeResult(s: Json, tenantItems: readonly string[]): void {
    this.limits(s);
    const distinctOn = ((s.distinctClause as unknown[]) ?? []).filter((d) => isObject(d) && Object.keys(d).length > 0);
    if (distinctOn.length > 0 && !distinctOn.some((d) => this.isTenantColumn(d, tenantItems))) {
      this.findings.push({ message: `has DISTINCT ON without ${this.tc}, which keeps one row per value across every practice of a batch (DISTINCT ON (${this.tc}, …))`, near: 'distinct' });
    }
    const keys = ((s.groupClause as unknown[]) ?? []).filter(isObject);
    const sets = keys.filter((k) => isObject(k.GroupingSet)).map((k) => k.GroupingSet as Json);
    if (sets.length === 0 || keys.some((k) => !isObject(k.GroupingSet) && this.isTenantColumn(k, tenantItems))) return;
    const holdsTenant = (x: unknown): boolean => {
      if (!isObject(x)) return false;
      if (isObject(x.RowExpr)) return ((x.RowExpr.args as unknown[]) ?? []).some((a) => this.isTenantColumn(a, tenantItems));
      if (isObject(x.GroupingSet)) return x.GroupingSet.kind === 'GROUPING_SET_SIMPLE' && ((x.GroupingSet.content as unknown[]) ?? []).some((a) => this.isTenantColumn(a, tenantItems));
      return this.isTenantColumn(x, tenantItems);
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

  private inOnTenantColumn(link: Json, body: Json, scope: Scope): boolean {
    if (link.subLinkType !== 'ANY_SUBLINK') return false;
    const left = elements(link.testexpr);
    const targets = ((body.targetList as unknown[]) ?? []).filter(isObject).map((r) => (r.ResTarget as Json).val);
    return left.some((l, i) => {
      const outerSide = this.isTenantColumn(l, [...scope.outer]);
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
          // `(x.practice_id, …) IN (select practice_id, …)` matches the practice as a correlation does.
          if (body) tenant = this.select(body, scope, correlated || (scope.outer.size > 0 && !this.inOnTenantColumn(v, body, scope))).tenant || tenant;
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


function elements(x: unknown): unknown[] {
  return isObject(x) && isObject(x.RowExpr) ? ((x.RowExpr.args as unknown[]) ?? []) : [x];
}

class UnionFind {
  private readonly parent = new Map<string, string>();
  find(x: string): string {
    let p = this.parent.get(x) ?? x;
    while (p !== (this.parent.get(p) ?? p)) p = this.parent.get(p) ?? p;
    if (p !== x) this.parent.set(x, p);
    return p;
  }
  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(ra, rb);
  }
}
