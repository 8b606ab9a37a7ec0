/**
 * The walk behind columnLineage (phi-lineage.ts) over libpg-query's parse tree: which base
 * columns each output column of a SELECT reads, through CTEs, subqueries, joins and expressions.
 */
import type { ColumnRef, FuncCall, Node, SelectStmt, SubLink, WithClause } from 'libpg-query';
import type { PhiClass } from '../project/types.ts';
import { baseInfo, combine, computedFrom, generalize, lineageLines, nonIdentifying, noneInfo, noteInfo, phiRank, reshapedFrom, shifted, step, unionColumn, asStored, type Info } from './phi-lineage-info.ts';
import { KNOWN_FUNCTIONS } from './phi-lineage-functions.ts';
import { figureColname } from './phi-lineage-names.ts';
import { conjunctsOf, isHighWater, isNode, isVaultKeyJoin, isVaultKeyUsing, lastName, LEAF_KINDS, lower, movedDatesProblem, picksValue, rowReturningCalls, starOf, tableFunctionColumns, VAULT_SHIFT } from './phi-lineage-nodes.ts';
import { columnRef, itemsNamed, naturalColumns, type FromItem, type Scope } from './phi-lineage-scope.ts';
import { labelled, LineageError, lookupCte, renamed, shapeInfo, sval, type Column, type CteEnv, type Shape } from './phi-lineage-shape.ts';

const SHIFTED = 'tsf_shifted';
/** How a lineage rendering marks an argument given to an approved generalizer (render.ts). */
const GENERALIZER_ARGUMENT = 'tsf_column';
/** Functions known to return one value per row (a select list's other calls may return rows). */
const ROW_KNOWN: ReadonlySet<string> = new Set([...KNOWN_FUNCTIONS, GENERALIZER_ARGUMENT]);
const GENERALIZED_IF_SHIFTED = 'tsf_generalized_if_shifted';

export interface DeclaredRelation {
  name: string;
  columns: Record<string, PhiClass>;
  /** Lower-cased columns its SQL computes from an identifying value (see Trace.computed). */
  computed?: ReadonlySet<string>;
  /** Its columns that hold a list written into the project, not data (LineageInput.lookups): all of a seed's. */
  lookup?: '*' | ReadonlySet<string>;
}

/** Whether a trace's base column is one of a list written into the project (a seed's, a model's constants). */
export function isLookupTrace(relations: ReadonlyMap<string, DeclaredRelation>, base: string): boolean {
  const dot = base.lastIndexOf('.');
  const lookup = relations.get(lower(base.slice(0, dot)))?.lookup;
  return lookup === '*' || (lookup !== undefined && lookup.has(lower(base.slice(dot + 1))));
}

export class Analyzer {
  /**
   * Values the query reads outside its select lists (WHERE, JOIN … ON, GROUP BY, HAVING, ORDER
   * BY, DISTINCT ON, LIMIT, FILTER, window clauses): an implicit flow, since which rows come out
   * can encode an identifier (`join generate_series(0, 9999) g(n) on g.n = right(ssn, 4)`).
   */
  readonly implicit: Info[] = [];
  /**
   * The implicit flows that choose which rows (and so which persons) are kept: WHERE, HAVING,
   * JOIN … ON, and ORDER BY under LIMIT or OFFSET. A published aggregate's population chosen by a
   * quasi-identifier is open to differencing against a total published over more rows.
   */
  readonly predicates: Info[] = [];
  /**
   * Above 0 while a predicate that keeps rows is read: there even whether a column is NULL counts
   * (`where birth_year is not null` leaves out everyone aged 90 and over).
   */
  private strict = 0;

  constructor(
    /** Keyed by the lower-cased relation name as the SQL spells it (`__tsf_ref_x`, `schema.table`). */
    private readonly relations: ReadonlyMap<string, DeclaredRelation>,
    /** Lower-cased function names that generalize. */
    private readonly generalizers: ReadonlySet<string>,
    /**
     * For an incremental model's `is_incremental` rendering (whose high-water test keeps nobody
     * out): `{{this}}`'s columns that hold one input column as stored, to that column's base.
     */
    private readonly selfStored: Readonly<Record<string, string>> | undefined = undefined,
    /** Lower-cased `relation.column` → the source column it holds as stored (LineageInput.origins). */
    private readonly origins: Readonly<Record<string, string>> = {},
  ) {}

  select(stmt: SelectStmt, ctes: CteEnv | undefined, outer: Scope | undefined): Shape {
    const env = stmt.withClause ? this.withClause(stmt.withClause, ctes, outer) : ctes;
    if (stmt.op && stmt.op !== 'SETOP_NONE') {
      if (!stmt.larg || !stmt.rarg) throw new LineageError(`${stmt.op} without both sides`);
      const left = this.select(stmt.larg, env, outer);
      const right = this.select(stmt.rarg, env, outer);
      // EXCEPT and INTERSECT keep the left side's rows by comparing every column with the
      // right side's: a predicate over both (`except select … from (values (<one patient>))`).
      if (stmt.op !== 'SETOP_UNION') this.predicates.push(combine([noneInfo(), ...left.columns.map((c) => c.info), ...right.columns.map((c) => c.info)]));
      // EXCEPT returns rows of the left side only; UNION and INTERSECT may return either side's values.
      if (stmt.op === 'SETOP_EXCEPT') return left;
      return {
        columns: left.columns.map((c, i) => {
          const r = right.columns[i];
          return { name: c.name, info: r ? unionColumn(c.info, r.info) : c.info };
        }),
        opaque: [...left.opaque, ...right.opaque],
      };
    }
    const scope: Scope = { items: [], outer };
    if (stmt.valuesLists) {
      const columns: Column[] = [];
      for (const row of stmt.valuesLists) {
        const items = 'List' in row ? (row.List.items ?? []) : [row];
        items.forEach((e, i) => {
          const info = this.expr(e, env, scope);
          const prior = columns[i];
          columns[i] = { name: `column${i + 1}`, info: prior ? unionColumn(prior.info, info) : info };
        });
      }
      return { columns, opaque: [] };
    }
    for (const f of stmt.fromClause ?? []) scope.items.push(...this.fromItem(f, env, scope));
    const outputs: Column[] = [];
    const opaque: string[] = [];
    scope.outputs = outputs;
    const chooses = (n: Node | undefined) => {
      if (n) this.implicit.push(this.expr(n, env, scope));
    };
    const keeps = (n: Node | undefined) => {
      if (n) this.predicates.push(this.strictly(() => this.expr(n, env, scope)));
    };
    // An incremental model's high-water conjunct chooses what is new, not whom (isHighWater).
    const highWater = (c: Node) => this.selfStored !== undefined && isHighWater(c, (n) => this.expr(n, env, scope), this.selfStored, (base) => this.origins[lower(base)]);
    for (const c of conjunctsOf(stmt.whereClause)) if (!highWater(c)) keeps(c);
    keeps(stmt.havingClause);
    const order = (stmt.sortClause ?? []).map((s) => ('SortBy' in s ? s.SortBy.node : s));
    // DISTINCT ON keeps one row per key, the first by ORDER BY; LIMIT keeps the first rows, in
    // the ORDER BY's order or, without one, in whatever order the inputs come (a sorted CTE's).
    const distinctOn = (stmt.distinctClause ?? []).filter((d) => Object.keys(d).length > 0);
    if (distinctOn.length > 0 || stmt.limitCount || stmt.limitOffset) [...distinctOn, ...order].forEach(keeps);
    // DISTINCT ON without ORDER BY keeps whichever row of each key comes first, as LIMIT without one.
    if ((stmt.limitCount || stmt.limitOffset || distinctOn.length > 0) && order.length === 0) this.predicates.push(combine([noneInfo(), ...scope.items.flatMap((it) => it.shape.columns.map((c) => c.info))]));
    chooses(stmt.whereClause);
    chooses(stmt.havingClause);
    chooses(stmt.limitCount);
    chooses(stmt.limitOffset);
    // How many rows a LIMIT or OFFSET keeps may be computed from the row (`exists (select 1 limit case when zip = … then 0 else 1 end)`).
    keeps(stmt.limitCount);
    keeps(stmt.limitOffset);
    for (const g of [...(stmt.groupClause ?? []), ...(stmt.distinctClause ?? []), ...(stmt.windowClause ?? [])]) chooses(g);
    for (const s of stmt.sortClause ?? []) chooses('SortBy' in s ? s.SortBy.node : s);
    // A set-returning call, wherever a SELECT evaluates it per row (select list, ORDER BY, GROUP
    // BY, DISTINCT ON, a window's PARTITION BY), drops the rows it returns nothing for.
    const perRow = [stmt.targetList, stmt.sortClause, stmt.groupClause, stmt.distinctClause, stmt.windowClause];
    for (const call of rowReturningCalls(perRow, ROW_KNOWN)) {
      chooses({ FuncCall: call });
      keeps({ FuncCall: call });
    }
    for (const t of stmt.targetList ?? []) {
      if (!('ResTarget' in t)) throw new LineageError('unexpected select list item');
      const { val, name } = t.ResTarget;
      if (!val) continue;
      const star = starOf(val);
      if (star) {
        const items = star.qualifier === undefined ? scope.items : itemsNamed(scope, star.qualifier);
        if (star.qualifier !== undefined && items.length === 0) opaque.push(star.qualifier);
        for (const it of items) {
          opaque.push(...it.shape.opaque);
          for (const c of it.shape.columns) outputs.push({ name: c.name, info: step(c.info, `${it.label}.${c.name}`) });
        }
        continue;
      }
      outputs.push({ name: name ?? figureColname(val), info: this.expr(val, env, scope) });
    }
    return { columns: outputs, opaque: [...new Set(opaque)] };
  }

  private withClause(w: WithClause, parent: CteEnv | undefined, outer: Scope | undefined): CteEnv {
    const env: CteEnv = { shapes: new Map(), parent };
    for (const node of w.ctes ?? []) {
      if (!('CommonTableExpr' in node)) continue;
      const cte = node.CommonTableExpr;
      const name = cte.ctename ?? '';
      const query = cte.ctequery;
      if (!query || !('SelectStmt' in query)) throw new LineageError(`CTE ${name}: only SELECT is supported`);
      const q = query.SelectStmt;
      const finish = (s: Shape) => this.declared(lower(name), labelled(renamed(s, cte.aliascolnames), name));
      if (w.recursive && q.op === 'SETOP_UNION' && q.larg) {
        // Start from the non-recursive term, then grow until the classes stop changing.
        let shape = finish(this.select(q.larg, env, outer));
        for (let i = 0; i < 5; i++) {
          env.shapes.set(lower(name), shape);
          const next = finish(this.select(q, env, outer));
          const same = next.columns.length === shape.columns.length && next.columns.every((c, j) => c.info.phi === shape.columns[j]?.info.phi);
          shape = next;
          if (same) break;
        }
        env.shapes.set(lower(name), shape);
      } else {
        env.shapes.set(lower(name), finish(this.select(q, env, outer)));
      }
    }
    return env;
  }

  /**
   * A relation named in `relations` takes its declared classes; when the SQL also defines it (a
   * tsform CTE), a column the body derives from something more identifying keeps that class.
   */
  private declared(key: string, body: Shape | undefined): Shape {
    const decl = this.relations.get(key);
    if (!decl) return body ?? { columns: [], opaque: [key] };
    const columns: Column[] = Object.entries(decl.columns).map(([col, phi]) => {
      const derived = body?.columns.filter((c) => lower(c.name) === lower(col)) ?? [];
      // Computed upstream (a model's `substr(zip, 3) AS zip`) is not a column as stored either.
      const computed = decl.computed?.has(lower(col)) === true || derived.some((c) => c.info.traces.some((t) => t.computed && t.baseClass !== 'none'));
      const declaredInfo = computed ? computedFrom(baseInfo(decl.name, col, phi)) : baseInfo(decl.name, col, phi);
      const worse = derived.filter((c) => phiRank(c.info.phi) > phiRank(phi));
      return { name: col, info: worse.length > 0 ? combine([declaredInfo, ...worse.map((c) => c.info)]) : declaredInfo };
    });
    const known = new Set(columns.map((c) => lower(c.name)));
    for (const c of body?.columns ?? []) if (!known.has(lower(c.name))) columns.push(c);
    return { columns, opaque: [] };
  }

  private fromItem(node: Node, env: CteEnv | undefined, scope: Scope): FromItem[] {
    if ('RangeVar' in node) {
      const rv = node.RangeVar;
      const rel = rv.relname ?? '';
      const qualified = rv.schemaname ? `${rv.schemaname}.${rel}` : rel;
      const cte = rv.schemaname ? undefined : lookupCte(env, lower(rel));
      const shape = cte ?? this.declared(lower(qualified), undefined);
      const alias = rv.alias?.aliasname;
      const qualifiers = alias ? [lower(alias)] : [lower(rel), ...(rv.schemaname ? [lower(qualified)] : [])];
      return [{ qualifiers, label: alias ?? qualified, shape: renamed(shape, rv.alias?.colnames) }];
    }
    if ('RangeSubselect' in node) {
      const rs = node.RangeSubselect;
      if (!rs.subquery || !('SelectStmt' in rs.subquery)) throw new LineageError('subquery in FROM is not a SELECT');
      const alias = rs.alias?.aliasname;
      const inner = this.select(rs.subquery.SelectStmt, env, rs.lateral ? scope : scope.outer);
      const shape = renamed(inner, rs.alias?.colnames);
      return [{ qualifiers: alias ? [lower(alias)] : [], label: alias ?? '(subquery)', shape: alias ? labelled(shape, alias) : shape }];
    }
    if ('JoinExpr' in node) {
      const j = node.JoinExpr;
      if (!j.larg || !j.rarg) throw new LineageError('join without both sides');
      const left = this.fromItem(j.larg, env, scope);
      const right = this.fromItem(j.rarg, env, { ...scope, items: [...scope.items, ...left] });
      if (j.quals) this.joinCondition(j.quals, env, { ...scope, items: [...scope.items, ...left, ...right] });
      // USING (c) is `l.c = r.c`, NATURAL the same over every column name both sides have: read
      // like any join condition, the tokenization join aside.
      const using = j.isNatural ? naturalColumns(left, right) : (j.usingClause ?? []).map(sval).filter((c): c is string => c !== undefined);
      for (const column of using) {
        const side = (items: FromItem[]) => columnRef({ fields: [{ String: { sval: column } }] } as ColumnRef, { ...scope, items, outer: undefined });
        const sides = [side(left), side(right)];
        if (isVaultKeyUsing(lower(column), sides, (i) => this.storedColumn(i))) continue;
        this.implicit.push(combine(sides));
        this.predicates.push(combine(sides));
      }
      const alias = j.alias?.aliasname;
      if (!alias) return [...left, ...right];
      const shape: Shape = {
        columns: [...left, ...right].flatMap((it) => it.shape.columns),
        opaque: [...left, ...right].flatMap((it) => it.shape.opaque),
      };
      return [{ qualifiers: [lower(alias)], label: alias, shape: labelled(renamed(shape, j.alias?.colnames), alias) }];
    }
    if ('RangeFunction' in node) {
      // A set-returning function (generate_series, unnest): its columns carry whatever its arguments read.
      const rf = node.RangeFunction;
      const calls = (rf.functions ?? []).flatMap((f) => ('List' in f ? (f.List.items ?? []).slice(0, 1) : [f]));
      const info = combine(calls.map((c) => this.expr(c, env, scope)));
      const first = calls[0];
      const fname = first && 'FuncCall' in first ? lastName(first.FuncCall) : 'function';
      const alias = rf.alias?.aliasname;
      const names = (rf.alias?.colnames ?? []).map(sval).filter((n): n is string => n !== undefined);
      const columns = (names.length > 0 ? names : [alias ?? fname]).map((n) => ({ name: n, info }));
      return [{ qualifiers: [lower(alias ?? fname)], label: alias ?? fname, shape: { columns, opaque: [] } }];
    }
    if ('RangeTableSample' in node && node.RangeTableSample.relation) return this.fromItem(node.RangeTableSample.relation, env, scope);
    if ('RangeTableFunc' in node || 'JsonTable' in node) {
      // xmltable / json_table: every column may hold any part of the document, so each carries
      // everything the call reads (document, row and column paths, defaults, PASSING values).
      const payload = ('RangeTableFunc' in node ? node.RangeTableFunc : node.JsonTable) as { alias?: { aliasname?: string } };
      const info = combine([noneInfo(), ...this.children(payload, env, scope)]);
      const fname = 'RangeTableFunc' in node ? 'xmltable' : 'json_table';
      const alias = payload.alias?.aliasname;
      const columns = tableFunctionColumns(payload).map((name) => ({ name, info }));
      return [{ qualifiers: [lower(alias ?? fname)], label: alias ?? fname, shape: { columns, opaque: [] } }];
    }
    throw new LineageError(`unsupported FROM item ${Object.keys(node)[0] ?? '?'}`);
  }

  expr(node: Node, env: CteEnv | undefined, scope: Scope): Info {
    if ('ColumnRef' in node) return columnRef(node.ColumnRef, scope);
    // A cast keeps the value (`cast(birthdate AS date)` in staging is the column as stored).
    if ('TypeCast' in node && node.TypeCast.arg) return this.expr(node.TypeCast.arg, env, scope);
    const info = computedFrom(this.computedExpr(node, env, scope));
    return picksValue(node) ? info : reshapedFrom(info);
  }

  /** An expression other than a column reference. */
  private computedExpr(node: Node, env: CteEnv | undefined, scope: Scope): Info {
    if ('FuncCall' in node) return this.funcCall(node.FuncCall, env, scope);
    if ('SubLink' in node) return this.subLink(node.SubLink, env, scope);
    if ('SelectStmt' in node) return shapeInfo(this.select(node.SelectStmt, env, scope));
    if ('NullTest' in node) {
      const t = node.NullTest;
      const label = t.nulltesttype === 'IS_NOT_NULL' ? 'is not null' : 'is null';
      const arg = t.arg ? this.expr(t.arg, env, scope) : noneInfo();
      // Whether a column is there identifies nobody; whether an expression is NULL is any test
      // at all (`nullif(ssn, '123-45-6789') is null`), so it carries what it reads, also when a
      // CTE or a model upstream computed the column (asStored).
      return t.arg && 'ColumnRef' in t.arg && asStored(arg) && this.strict === 0 ? nonIdentifying(arg, label) : step(arg, label);
    }
    if (LEAF_KINDS.has(Object.keys(node)[0] ?? '')) return noneInfo();
    // Anything else (casts, operators, CASE, COALESCE, arrays, …) carries the max of what it reads.
    return combine([noneInfo(), ...this.children(Object.values(node)[0], env, scope)]);
  }

  /** Every expression under a node's payload (plain structs like a cast's type name are walked through). */
  private children(value: unknown, env: CteEnv | undefined, scope: Scope): Info[] {
    if (Array.isArray(value)) return value.flatMap((v) => this.children(v, env, scope));
    if (value === null || typeof value !== 'object') return [];
    if (isNode(value)) return [this.expr(value, env, scope)];
    return Object.values(value).flatMap((v) => this.children(v, env, scope));
  }

  private funcCall(fc: FuncCall, env: CteEnv | undefined, scope: Scope): Info {
    const name = lastName(fc);
    if (name === GENERALIZER_ARGUMENT && fc.args?.length === 1) {
      // A generalizer was reviewed for a column as stored: given a value computed here (a CTE's
      // `substr(zip, 3)`), it would pass anything computed from a quasi-identifier as generalized.
      const arg = this.expr(fc.args[0]!, env, scope);
      if (!arg.traces.some((t) => t.computed && t.phi !== 'none')) return arg;
      return combine([arg, noteInfo([`an approved generalizer is given a value computed from an identifying one, in this model or upstream (${lineageLines(arg)[0] ?? 'an expression'}): it generalizes a column as stored (or cast) only`])]);
    }
    if (name === SHIFTED && fc.args?.length === 2) {
      const value = this.expr(fc.args[0]!, env, scope);
      // The shift is the vault's column itself, not an expression over it (`* 0` would undo it).
      if (!('ColumnRef' in fc.args[1]!)) return combine([value, noteInfo(["shift_date(…): the shift must be the vault's date_shift_days column itself, not an expression"])]);
      const moved = movedDatesProblem(fc.args[0]!, SHIFTED, GENERALIZER_ARGUMENT, (n) => this.expr(n, env, scope), (base) => this.origins[lower(base)]);
      if (moved) return combine([value, noteInfo([`shift_date(…): ${moved}`])]);
      return shifted(value, this.expr(fc.args[1]!, env, scope), VAULT_SHIFT, 'shift_date(…)');
    }
    if (name === GENERALIZED_IF_SHIFTED && fc.args?.length === 1) {
      const inner = this.expr(fc.args[0]!, env, scope);
      if (inner.shifted) return generalize(inner, `${name}(…)`);
      return combine([step(inner, `${name}(…)`), ...(inner.phi === 'none' ? [] : [noteInfo([`${name}: generalizes only a date moved by the vault's per-person shift first`])])]);
    }
    const args = (fc.args ?? []).map((a) => this.expr(a, env, scope));
    // An ordered-set aggregate (percentile_cont(…) WITHIN GROUP (ORDER BY x)) returns a value of x.
    if (fc.agg_within_group) for (const s of fc.agg_order ?? []) if ('SortBy' in s && s.SortBy.node) args.push(this.expr(s.SortBy.node, env, scope));
    // FILTER, OVER (PARTITION BY / ORDER BY) and an aggregate's ORDER BY choose rows; they are not
    // output, but an implicit flow.
    // The rows a FILTER picks, and the order an aggregate reads them in, shape its value
    // (`count(*) FILTER (WHERE zip3 = '021')` counts those persons): they carry into it.
    const chosen: Info[] = [];
    if (fc.agg_filter) chosen.push(this.expr(fc.agg_filter, env, scope));
    if (fc.over) this.implicit.push(combine([noneInfo(), ...this.children(fc.over, env, scope)]));
    if (!fc.agg_within_group) for (const s of fc.agg_order ?? []) if ('SortBy' in s && s.SortBy.node) chosen.push(this.expr(s.SortBy.node, env, scope));
    this.implicit.push(...chosen);
    const info = args.length + chosen.length === 0 ? noneInfo() : combine([...args, ...chosen]);
    const label = `${name === 'timezone' && fc.funcformat === 'COERCE_SQL_SYNTAX' ? 'at time zone' : name}(…)`;
    // A number of rows, or of values of columns, identifies nobody; a count of an expression
    // (`count(CASE WHEN zip3 = '021' THEN 1 END)`) or of filtered rows is that expression's test.
    const plainCount = chosen.length === 0 && (fc.args ?? []).every((a) => 'ColumnRef' in a) && asStored(combine([noneInfo(), ...args]));
    if (name === 'count' && plainCount && this.strict === 0) return nonIdentifying(info, label);
    if (name === 'count') return step(info, label);
    if (this.generalizers.has(name)) return generalize(info, label);
    if (!KNOWN_FUNCTIONS.has(name)) return combine([info, noteInfo([`unknown function ${name}(): its output cannot be classified (src/security/phi-lineage-functions.ts lists reviewed functions)`])]);
    return step(info, label);
  }

  /**
   * A join condition is an implicit flow, except the tokenization join: an equality of one of the
   * vault's key columns (tenant column, patient id) with the same-named plain column of another
   * relation. That join is how a record gets its token; any other use of the vault is not exempt.
   */
  private joinCondition(quals: Node, env: CteEnv | undefined, scope: Scope): void {
    for (const c of conjunctsOf(quals)) {
      if (isVaultKeyJoin(c, (cr) => columnRef(cr, scope), (i) => this.storedColumn(i))) continue;
      const info = this.expr(c, env, scope);
      this.implicit.push(info);
      this.predicates.push(info);
    }
  }

  /** A column of a relation the SQL reads, as stored there: not a constant, a seed's, or a value computed on the way. */
  private storedColumn(i: Info): boolean {
    return i.notes.length === 0 && i.traces.length > 0 && i.traces.every((t) => !t.computed && !isLookupTrace(this.relations, t.base));
  }

  private strictly(read: () => Info): Info {
    this.strict++;
    try {
      return read();
    } finally {
      this.strict--;
    }
  }

  private subLink(sl: SubLink, env: CteEnv | undefined, scope: Scope): Info {
    if (sl.subLinkType === 'EXISTS_SUBLINK') {
      // Whether a row exists identifies nobody, but the subquery's own predicates are an
      // implicit flow: analysed for what they record, not for a value.
      if (sl.subselect && 'SelectStmt' in sl.subselect) this.select(sl.subselect.SelectStmt, env, scope);
      return noneInfo();
    }
    const parts: Info[] = [];
    if (sl.testexpr) parts.push(this.expr(sl.testexpr, env, scope));
    if (sl.subselect && 'SelectStmt' in sl.subselect) parts.push(shapeInfo(this.select(sl.subselect.SelectStmt, env, scope)));
    return parts.length === 0 ? noneInfo() : combine(parts);
  }
}
