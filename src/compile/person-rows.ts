/**
 * A published aggregate's cells count persons (counted-persons.ts), and a cell of k persons
 * protects them only if its keys are those persons' own values. A key read from other persons'
 * rows is counted with unrelated persons: `… cross join pseudo_persons o` or a sub-select picking
 * one rare person's condition makes a cell of everyone, keyed by that person's value. So every
 * SELECT from the aggregate down to the tokenizing models (those reading the vault's token map,
 * whose rows are each one patient's) must keep each row to one person: inputs holding persons
 * joined on equal person tokens (AND-ed equalities in ON, USING or WHERE); no sub-select over
 * persons unless matched to the row's token, and no window (their values span rows); grouping
 * only by the person token, except in the aggregate itself. Seeds and VALUES hold no persons and may be joined on anything. Fails closed: a
 * relation it cannot follow is refused.
 */
import { isObject, type PgJson as Json } from './pg-tree.ts';
import { ColumnTracer, practiceId, TokenDerivation, TokenTracer, vaultPracticeToken, type RelationLookup } from './counted-persons.ts';
import { contains, emptyEnv, equalities, firstApart, fromItems, joinedPairs, joinQuals, isSetOp, leftmost, outputName, parseSelect, refFields, rowClauses, selectOver, subLinks, subSelectOf, targetsOf, withCtes, type Env, type FromItem } from './select-scope.ts';
import { isCorrelated } from './sub-select-correlation.ts';

type Rows = { problem: string } | { persons: boolean };
type Scope = { s: Json; env: Env };
/**
 * A value that may not choose rows (tokenLookup): where it is followed to (`tokens`; `derived`:
 * computed from one), whether two of them may meet by equality only (`equalOnly`), and why not.
 */
type TokenKind = { tokens: ColumnTracer; derived: ColumnTracer; equalOnly?: boolean; why: (over: string) => string };

const MAX_DEPTH = 40;
/** Aggregates written without GROUP BY aggregate over every row (and so across persons). */
const AGGREGATES = new Set([
  'count', 'sum', 'min', 'max', 'avg', 'array_agg', 'string_agg', 'listagg', 'group_concat', 'bool_and', 'bool_or', 'every',
  'any_value', 'arbitrary', 'first', 'last', 'mode', 'median', 'quantile', 'quantile_cont', 'quantile_disc', 'percentile_cont',
  'percentile_disc', 'stddev', 'stddev_pop', 'stddev_samp', 'variance', 'var_pop', 'var_samp', 'json_agg', 'jsonb_agg',
  'json_object_agg', 'jsonb_object_agg', 'xmlagg', 'bit_and', 'bit_or', 'bit_xor', 'histogram', 'list', 'arg_max', 'arg_min',
  'max_by', 'min_by', 'product', 'approx_count_distinct', 'entropy', 'kurtosis', 'skewness', 'corr', 'covar_pop', 'covar_samp',
]);

/** Why a row of the published aggregate's inputs may hold values of several persons, or undefined. */
export function personRowsProblem(sql: string, lookup: RelationLookup, tenantColumn: string): string | undefined {
  const select = parseSelect(sql);
  if (!select) return undefined; // model-sql.ts reports what the grammar cannot read
  const rows = checkerFor(lookup, tenantColumn).select(select, emptyEnv(), 0, true);
  return 'problem' in rows ? rows.problem : undefined;
}

/**
 * Why a person-level published relation's classes may not be sized in persons, or undefined. The
 * gate counts distinct person tokens per class (rows, without a token column: one person's
 * encounters reached k alone), so each row must be one person's and hold that person's token.
 */
export function personLevelProblem(sql: string, lookup: RelationLookup, tenantColumn: string): string | undefined {
  const select = parseSelect(sql);
  if (!select) return undefined;
  const rows = checkerFor(lookup, tenantColumn).select(select, emptyEnv(), 0, false);
  if ('problem' in rows) return rows.problem;
  const tokens = new TokenTracer(lookup);
  const names = new Set(['person_token', ...targetsOf(leftmost(select)).map(outputName).filter((n): n is string => n !== undefined)]);
  if ([...names].some((name) => tokens.output(select, name, emptyEnv()) === undefined)) return undefined;
  return 'outputs no person token (the vault\'s, passed on unchanged), so its classes would be sized in rows, and one person\'s rows reach k; output the person token, or publish an aggregate with k_anonymity_count';
}

const checkers = new WeakMap<RelationLookup, PersonRows>();

/** One checker per compile (per lookup), so that a model read by many is followed once. */
function checkerFor(lookup: RelationLookup, tenantColumn: string): PersonRows {
  const checker = checkers.get(lookup) ?? new PersonRows(lookup, tenantColumn);
  checkers.set(lookup, checker);
  return checker;
}

/**
 * The seeds whose practice id the checks of this compile (this lookup) have read so far, in the
 * lineage of published relations: their other columns choose practices (practice-seeds.ts).
 */
export function seedsReadByPracticeId(lookup: RelationLookup): ReadonlySet<string> {
  return checkers.get(lookup)?.practiceSeeds ?? new Set();
}

class PersonRows {
  /** Each model's rows, once followed. */
  private readonly models = new Map<string, Rows>();
  private readonly tokens: TokenTracer;
  private readonly derived: TokenDerivation;

  private readonly kinds: readonly TokenKind[];
  readonly practiceSeeds = new Set<string>();
  /** Models below the tokenizing models, once looked into (lookupsBelow). */
  private readonly below = new Map<string, string | undefined>();

  constructor(
    private readonly lookup: RelationLookup,
    tenantColumn: string,
  ) {
    this.tokens = new TokenTracer(lookup);
    this.derived = new TokenDerivation(lookup);
    this.kinds = [
      {
        tokens: this.tokens,
        derived: this.derived,
        why: (over) => `${over} compares a person token with values that are not person tokens (a list of known tokens picks those persons); join tokens only to tokens`,
      },
      // A practice is a population too: `where practice_token <> '…'` beside a total over every
      // practice gives that practice's cells, small ones included, by differencing.
      {
        tokens: new ColumnTracer(lookup, vaultPracticeToken),
        derived: new TokenDerivation(lookup, vaultPracticeToken),
        why: (over) =>
          `${over} compares a practice token with values that are not practice tokens (a known practice's token picks or leaves out that practice, and a total over every practice beside it gives that practice's cells by differencing); join practice tokens only to practice tokens`,
      },
      // Pseudonymized rows keep the practice id (to replace a practice's slice), which chooses a
      // practice as its token does. A seed's practice id column is one too: a seed may be joined
      // on it (a region per practice), and practice-seeds.ts sees that no combination of its
      // values holds fewer than k practices, or a seed listing one practice would pick it.
      {
        tokens: new ColumnTracer(lookup, practiceId(tenantColumn, (seed) => this.practiceSeeds.add(seed))),
        derived: new TokenDerivation(lookup, practiceId(tenantColumn)),
        // `e.practice_id > r.practice_id` picks a range of practices, from a seed's value or from
        // rows chosen by any other column; ids are not secret, so only equality joins them.
        equalOnly: true,
        why: (over) =>
          `${over} compares a practice id with values that are not practice ids (a known practice picked or left out, and a total over every practice beside it gives that practice's cells by differencing); join practice ids only to practice ids (a seed's column named ${tenantColumn} is one)`,
      },
    ];
  }

  /**
   * `outermost`: the published aggregate itself; `perPerson`: a sub-select matched to one person;
   * `outer`: the SELECT a sub-select sits in, whose columns it may name.
   */
  select(s: Json, env: Env, depth: number, outermost: boolean, perPerson = false, outer?: Scope): Rows {
    if (depth > MAX_DEPTH) return { problem: 'its inputs nest too deep to follow' };
    const local = withCtes(s, env);
    if (isSetOp(s)) {
      const arms = [this.select(s.larg as Json, local, depth, outermost, perPerson), this.select(s.rarg as Json, local, depth, outermost, perPerson)];
      const failed = arms.find((r) => 'problem' in r);
      return failed ?? { persons: arms.some((r) => 'persons' in r && r.persons) };
    }
    const items = fromItems((s.fromClause as unknown[]) ?? [], local);
    const clauses = rowClauses(s);
    for (const link of subLinks(clauses)) {
      // Over seeds only (a lookup list) a sub-select holds no person; over persons it may be
      // another's, unless it is matched to the row's person (`p.person_token IN (select …)`).
      const correlated = isCorrelated(link, s, local, [[this.tokens]]);
      const rows = this.select(subSelectOf(link), local, depth + 1, false, correlated, { s, env: local });
      if ('problem' in rows) return rows;
      if (rows.persons && !correlated) return { problem: `${selectOver(items)} has a sub-select over other persons' rows; match it to the row's person token (or join on it)` };
    }
    if (contains(clauses, (n) => isObject(n.FuncCall) && n.FuncCall.over !== undefined)) return { problem: `${selectOver(items)} has a window, whose values span persons` };

    const persons: FromItem[] = [];
    for (const item of items) {
      const rows = this.item(item, depth);
      if ('problem' in rows) return rows;
      if (rows.persons) persons.push(item);
    }
    const unlinked = this.unlinked(s, local, persons);
    if (unlinked) return { problem: unlinked };
    const looked = this.tokenLookup(s, local, outer, outer !== undefined);
    if (looked) return { problem: looked };
    if (!outermost && !perPerson && persons.length > 0) {
      const across = this.groupedAcrossPersons(s, local);
      if (across) return { problem: across };
    }
    return { persons: persons.length > 0 };
  }

  private item(item: FromItem, depth: number): Rows {
    const source = item.source;
    if (source.kind === 'other') return { problem: source.why };
    if (source.kind === 'select') return this.select(source.select, source.env, depth + 1, false);
    const found = this.lookup(source.name);
    // Below the tokenizing models, patient-rows.ts: a source here is read past the pseudonymization.
    if (!found || found.kind === 'source' || found.kind === 'self') return { problem: `it reads ${source.name}, which is not a model, a seed or the vault` };
    if (found.kind === 'seed') return { persons: false };
    // The vault's rows and a tokenizing model's (one patient's record and its token) are each one
    // person's: the boundary of this check, but for its tokens picked by value (`where
    // v.person_token <> 'ab12…'` there leaves a known person out of everything above).
    if (found.kind === 'vault') return { persons: true };
    const known = this.models.get(source.name);
    if (known) return known;
    if (found.tokenizes) {
      const looked = this.lookupsInModel(found.sqls, depth + 1) ?? this.lookupsBelow(found.sqls, depth + 1);
      const rows: Rows = looked ? { problem: `${source.name.replace(/^__tsf_ref_/, '')}: ${looked}` } : { persons: true };
      this.models.set(source.name, rows);
      return rows;
    }
    let result: Rows = { persons: false };
    for (const sql of found.sqls) {
      const select = parseSelect(sql);
      const rows = select ? this.select(select, emptyEnv(), depth + 1, false) : { problem: `${source.name} cannot be read` };
      if ('problem' in rows || rows.persons) result = rows;
      if ('problem' in rows) break;
    }
    this.models.set(source.name, result);
    return result;
  }

  private lookupsInModel(sqls: readonly string[], depth: number): string | undefined {
    return sqls.map(parseSelect).reduce<string | undefined>((why, select) => why ?? (select ? this.lookupsIn(select, emptyEnv(), undefined, depth) : undefined), undefined);
  }

  /**
   * The first lookup in the models a tokenizing model reads, down to the sources. Their rows hold
   * no token, but they hold practice ids: a staging model kept to some practices (`where
   * practice_id <> 'p_…'`, a seed listing one) chooses them for everything above it.
   */
  private lookupsBelow(sqls: readonly string[], depth: number): string | undefined {
    if (depth > MAX_DEPTH) return 'its inputs nest too deep to follow';
    for (const name of sqls.flatMap((sql) => [...relationsNamed(parseSelect(sql))])) {
      const found = this.lookup(name);
      if (found?.kind !== 'model') continue;
      if (!this.below.has(name)) {
        this.below.set(name, undefined); // a model reading itself ({{this}} aside) must not loop
        const why = this.lookupsInModel(found.sqls, depth + 1) ?? this.lookupsBelow(found.sqls, depth + 1);
        this.below.set(name, why && `${name.replace(/^__tsf_ref_/, '')}: ${why}`);
      }
      const why = this.below.get(name);
      if (why) return why;
    }
    return undefined;
  }

  /** The first token lookup (tokenLookup) in `s` or any SELECT it reads (derived tables, CTEs, sub-selects). */
  private lookupsIn(s: Json, env: Env, outer: Scope | undefined, depth: number, subSelect = false): string | undefined {
    if (depth > MAX_DEPTH) return 'its inputs nest too deep to follow';
    const local = withCtes(s, env);
    if (isSetOp(s)) return this.lookupsIn(s.larg as Json, local, outer, depth, subSelect) ?? this.lookupsIn(s.rarg as Json, local, outer, depth, subSelect);
    const looked = this.tokenLookup(s, local, outer, subSelect);
    if (looked) return looked;
    for (const item of fromItems((s.fromClause as unknown[]) ?? [], local)) {
      const why = item.source.kind === 'select' ? this.lookupsIn(item.source.select, item.source.env, undefined, depth + 1) : undefined;
      if (why) return why;
    }
    for (const link of subLinks(rowClauses(s))) {
      const why = this.lookupsIn(subSelectOf(link), local, { s, env: local }, depth + 1, true);
      if (why) return why;
    }
    return undefined;
  }

  /** Why the inputs holding persons are not all joined on equal person tokens, or undefined. */
  private unlinked(s: Json, env: Env, persons: readonly FromItem[]): string | undefined {
    if (persons.length < 2) return undefined;
    const apart = firstApart(persons, joinedPairs(s, (fields) => this.tokens.column(fields, s, env) === undefined));
    if (!apart) return undefined;
    return `it joins ${persons[0]!.qualifier || 'an input'} and ${apart.qualifier || 'an input'} without equating their person tokens (a row would hold two persons' values)`;
  }

  /**
   * Why `s` picks persons by their token's value, or a practice by its token or id, or undefined. A
   * person token, or anything computed from one (`lower(token)`, a CTE's `token = 'ab12…' as hit`,
   * a CASE over it), read by what keeps rows (WHERE, HAVING, ON, ORDER BY under LIMIT or OFFSET,
   * DISTINCT ON, a sub-select's select list) picks known persons: their cells, or a measure joined
   * from a list, tell which cells they are in. The reads allowed: a token beside another token (a
   * join on persons), whether one is NULL, a count of them, and `token IN (sub-select of tokens)`.
   * The same for practice tokens and practice ids (`kinds`). `keepsTargets`: `s` is a sub-select,
   * whose select list is such a read.
   */
  private tokenLookup(s: Json, env: Env, outer: Scope | undefined, keepsTargets = false): string | undefined {
    // Its condition is every column both sides have, unseen here: a seed of one practice id joins on it.
    if (contains(s.fromClause, (n) => isObject(n.JoinExpr) && n.JoinExpr.isNatural === true)) {
      return `${selectOver(fromItems((s.fromClause as unknown[]) ?? [], env))} joins by NATURAL JOIN, whose condition (every column both sides have, the practice id or a token among them) is not written out; name the columns with USING or ON`;
    }
    for (const kind of this.kinds) {
      const why = this.lookupOf(kind, s, env, outer, keepsTargets);
      if (why) return why;
    }
    return undefined;
  }

  /** tokenLookup for one kind of token (a person's, a practice's). */
  private lookupOf(kind: TokenKind, s: Json, env: Env, outer: Scope | undefined, keepsTargets: boolean): string | undefined {
    const own = new Set(fromItems((s.fromClause as unknown[]) ?? [], env).map((i) => i.qualifier));
    // A name qualified by an input of the SELECT around a sub-select is that SELECT's column.
    const scopeOf = (f: string[]) => (f.length === 2 && !own.has(f[0]!) && outer ? outer : { s, env });
    const isTokenColumn = (f: string[]): boolean => f.length > 0 && kind.tokens.column(f, scopeOf(f).s, scopeOf(f).env) === undefined;
    const isToken = (x: unknown): boolean => isObject(x) && isObject(x.ColumnRef) && isTokenColumn(refFields(x));
    const why = kind.why(selectOver(fromItems((s.fromClause as unknown[]) ?? [], env)));
    for (const [a, b] of equalities(s)) {
      const [l, r] = [a, b].map(isTokenColumn);
      if (l !== r) return why;
    }
    const picks = (x: unknown): boolean => {
      if (Array.isArray(x)) return x.some(picks);
      if (!isObject(x)) return false;
      const e = isObject(x.A_Expr) ? x.A_Expr : undefined;
      if (e && isToken(e.lexpr) && isToken(e.rexpr) && (!kind.equalOnly || isEquality(e))) return false;
      if (isObject(x.NullTest) && isToken(x.NullTest.arg)) return false;
      if (isObject(x.FuncCall) && funcName(x.FuncCall) === 'count' && !x.FuncCall.agg_filter && ((x.FuncCall.args as unknown[]) ?? []).every(isToken)) return false;
      const link = isObject(x.SubLink) ? x.SubLink : undefined;
      if (link) {
        // The sub-select itself is read by lookupsIn; here only what it is matched with.
        if (!isToken(link.testexpr)) return picks(link.testexpr);
        const sub = subSelectOf(link);
        const name = outputName(targetsOf(sub)[0]);
        return !name || kind.tokens.output(sub, name, env) !== undefined;
      }
      const f = isObject(x.ColumnRef) ? refFields(x) : [];
      if (f.length > 0) return kind.derived.column(f, scopeOf(f).s, scopeOf(f).env) === undefined;
      return Object.values(x).some(picks);
    };
    const limited = s.limitCount !== undefined || s.limitOffset !== undefined;
    const distinctOn = ((s.distinctClause as unknown[]) ?? []).filter((d) => isObject(d) && Object.keys(d).length > 0);
    const keeping = [
      s.whereClause,
      s.havingClause,
      ...joinQuals((s.fromClause as unknown[]) ?? []),
      s.limitCount,
      s.limitOffset,
      distinctOn,
      limited || distinctOn.length > 0 ? s.sortClause : undefined,
      // A sub-select's output passed on unchanged is matched where it is used (IN, =).
      keepsTargets ? targetsOf(s).map((t) => t.val).filter((v) => !isToken(v)) : undefined,
    ];
    return picks(keeping) ? why : undefined;
  }

  /** Why `s` (not the aggregate itself) makes a row of several persons' rows, or undefined. */
  private groupedAcrossPersons(s: Json, env: Env): string | undefined {
    const keys = ((s.groupClause as unknown[]) ?? []).filter(isObject);
    const aggregated = contains([s.targetList, s.havingClause], (n) => isObject(n.FuncCall) && isAggregateCall(n.FuncCall), true);
    if (keys.length === 0 && !aggregated) return undefined;
    const targets = targetsOf(s);
    const byToken = keys.some((key) => {
      const position = isObject(key.A_Const) && isObject(key.A_Const.ival) ? Number(key.A_Const.ival.ival ?? 0) : 0;
      const val = position > 0 ? targets[position - 1]?.val : key;
      return isObject(val) && isObject(val.ColumnRef) && this.tokens.column(refFields(val), s, env) === undefined;
    });
    if (byToken && !keys.some((k) => isObject(k.GroupingSet))) return undefined;
    return `${selectOver(fromItems((s.fromClause as unknown[]) ?? [], env))} aggregates rows of several persons (group it by the person token)`;
  }
}

/** Relations named anywhere in a SELECT (every level's FROM, sub-selects'). */
function relationsNamed(select: Json | undefined): Set<string> {
  const names = new Set<string>();
  contains(select, (n) => {
    if (isObject(n.RangeVar) && n.RangeVar.schemaname === undefined) names.add(String(n.RangeVar.relname));
    return false;
  });
  return names;
}

/** `a = b` or `a IS NOT DISTINCT FROM b`. */
function isEquality(e: Json): boolean {
  if (e.kind === 'AEXPR_NOT_DISTINCT') return true;
  const op = ((e.name as unknown[]) ?? []).filter(isObject).map((n) => (isObject(n.String) ? String(n.String.sval) : ''));
  return e.kind === 'AEXPR_OP' && op.length === 1 && op[0] === '=';
}

function funcName(fc: Json): string {
  return ((fc.funcname as unknown[]) ?? []).filter(isObject).map((f) => (isObject(f.String) ? String(f.String.sval) : '')).at(-1)?.toLowerCase() ?? '';
}

function isAggregateCall(fc: Json): boolean {
  const name = funcName(fc);
  return AGGREGATES.has(name) || fc.agg_star === true || fc.agg_distinct === true || fc.agg_order !== undefined || fc.agg_filter !== undefined;
}

