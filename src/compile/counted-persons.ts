/**
 * A published aggregate's `k_anonymity_count` must count persons: the gate withholds cells
 * below k of that count, and `count(*)` of one person's encounters reaches k alone. So the count
 * must be `count(DISTINCT x)` where x is the vault's person token, passed on unchanged: followed
 * through CTEs, derived tables and upstream models' SQL (their bare renderings) to the `person_token`
 * of the vault's token map. Whatever cannot be followed (an expression, a source, a column that
 * is not output, an unqualified name among several inputs) is refused: this check fails closed.
 * Pure: the WebAssembly parser only (model-sql.ts has loaded it).
 */
import { cellMeasures } from './k-count-shape.ts';
import { isObject, type PgJson as Json } from './pg-tree.ts';
import { contains, emptyEnv, fromItems, isSetOp, outputName, outputPosition, parseSelect, refFields, starQualifier, targetsOf, withCtes, type Env } from './select-scope.ts';

/**
 * What a relation named in a bare rendering is: the vault's token map, a seed, a model (its
 * renderings; `tokenizes`: it reads the vault's token map itself), or none of them.
 */
export type Relation =
  | { kind: 'vault' }
  | { kind: 'seed'; name: string }
  | { kind: 'model'; tokenizes: boolean; sqls: readonly string[] }
  /** `patients`: its rows may be patients' (it has the patient id column, or declares no columns). */
  | { kind: 'source'; patients: boolean }
  /** The model's own previous rows (`{{this}}`). */
  | { kind: 'self' };
export type RelationLookup = (name: string) => Relation | undefined;

/**
 * Where a followed column must end, at a relation that is not a model (models are followed into):
 * undefined when `column` of it is the value sought, else why not.
 */
export type ColumnBase = (relation: Exclude<Relation, { kind: 'model' }> | undefined, name: string, column: string) => string | undefined;

/** A ColumnBase ending at the vault's token map column `tokenColumn`. */
function vaultColumn(tokenColumn: string, noun: string): ColumnBase {
  return (relation, name, column) => {
    // A model's own earlier rows ({{this}}) hold the tokens it gave them.
    if (relation?.kind === 'self' && column === tokenColumn) return undefined;
    if (relation?.kind !== 'vault') return `it reads ${name}, neither a model nor the vault's token map`;
    return column === tokenColumn ? undefined : `the vault's ${column} is not its ${noun}`;
  };
}

const VAULT_TOKEN_COLUMN = 'person_token';
const vaultToken = vaultColumn(VAULT_TOKEN_COLUMN, 'person token');
/** The vault's practice token: a practice picked by it is differenced out like a person (person-rows.ts). */
export const vaultPracticeToken = vaultColumn('practice_token', 'practice token');

/**
 * A practice id: the tenant column of the vault, of a source, of the model's own rows, or of a
 * seed. A seed's is one only under that name, and `onSeed` hears of every seed whose practice id
 * is read so (practice-seeds.ts then checks how its other columns tell practices apart).
 */
export function practiceId(tenantColumn: string, onSeed: (seed: string) => void = () => undefined): ColumnBase {
  const column = tenantColumn.toLowerCase();
  return (relation, name, c) => {
    if (c.toLowerCase() !== column) return `${name}.${c} is not a practice id`;
    if (relation?.kind === 'seed') onSeed(relation.name);
    const kept = relation?.kind === 'vault' || relation?.kind === 'source' || relation?.kind === 'self' || relation?.kind === 'seed';
    return kept ? undefined : `${name}.${c} is not a practice id`;
  };
}
/** Models and CTEs nest a few levels; a self-reading model ({{this}}) must not loop. */
const MAX_DEPTH = 40;

/** Why `kCount` is not a count of distinct vault person tokens, or undefined when it is. */
export function countedPersonsProblem(sql: string, kCount: string, lookup: RelationLookup): string | undefined {
  const select = parseSelect(sql);
  if (!select) return undefined; // model-sql.ts reports what the grammar cannot read
  return new TokenTracer(lookup).count(select, kCount.toLowerCase(), undefined, emptyEnv());
}

/** Follows a column, passed on unchanged, through CTEs, derived tables and models to a relation's column. */
export class ColumnTracer {
  /** A model's output column, once followed: why it is not what is sought (undefined: it is). */
  private readonly models = new Map<string, string | undefined>();

  constructor(
    private readonly lookup: RelationLookup,
    private readonly base: ColumnBase,
  ) {}

  /** Why the column `fields`, read in the FROM of `s`, is not what is sought (undefined: it is). */
  column(fields: string[], s: Json, env: Env, depth = 0): string | undefined {
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
    if (source.kind === 'select' && source.renamed) return `${candidates[0]!.qualifier} renames its columns`;
    if (source.kind === 'select') return this.output(source.select, column, source.env, depth + 1);
    const found = this.lookup(source.name);
    if (found?.kind !== 'model') return this.base(found, source.name, column);
    const key = `${source.name}\u0000${column}`;
    if (this.models.has(key)) return this.models.get(key);
    let why: string | undefined;
    for (const sql of found.sqls) {
      const select = parseSelect(sql);
      why = select ? this.output(select, column, emptyEnv(), depth + 1) : `${source.name} cannot be read`;
      if (why) break;
    }
    this.models.set(key, why);
    return why;
  }

  /** Why output column `name` of `s` (every arm of a UNION) is not what is sought (undefined: it is). */
  output(s: Json, name: string, env: Env, depth = 0): string | undefined {
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
  protected passed(target: Json, s: Json, env: Env, depth: number): string | undefined {
    const val = target.val;
    if (!isObject(val) || !isObject(val.ColumnRef)) return `${outputName(target) ?? 'a column'} is computed, not passed on`;
    return this.column(refFields(val), s, env, depth);
  }
}

/** Follows a column to tell whether its values are the vault's person tokens. */
export class TokenTracer extends ColumnTracer {
  constructor(lookup: RelationLookup) {
    super(lookup, vaultToken);
  }

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
}

/**
 * Why a published aggregate outputs, beside its cells' keys and count, something computed from
 * its members' person tokens, or undefined. `min(person_token)` or `string_agg(person_token, ',')`
 * per cell ties those persons to the cell's keys; lists keyed by ZIP3 in one relation and by birth
 * year in another give each person's whole combination back. Tokens are `none` to the PHI
 * classes (they name nobody), so they are followed here, through any expression over them.
 */
export function measuredTokensProblem(sql: string, kCount: string, lookup: RelationLookup): string | undefined {
  const tracer = new TokenDerivation(lookup);
  const found = measureColumns(sql, kCount, (ref, arm, env) => (tracer.column(refFields(ref), arm, env) === undefined ? true : undefined));
  return found && `outputs ${outputName(found.target) ?? 'a column'} computed from its members' person tokens (${refFields(found.ref).join('.')}), which ties those persons to the cell's keys; a token may only be counted, as ${kCount}`;
}

/**
 * The first column a published aggregate's measure reads for which `pick` says something, with
 * the measure and what it said: every measure of every arm, in its own CTE scope.
 */
export function measureColumns<R>(sql: string, kCount: string, pick: (ref: Json, arm: Json, env: Env) => R | undefined): { target: Json; ref: Json; said: R } | undefined {
  const select = parseSelect(sql);
  if (!select) return undefined;
  const top = withCtes(select, emptyEnv());
  for (const { select: arm, target } of cellMeasures(select, kCount)) {
    const env = arm === select ? top : withCtes(arm, top);
    for (const ref of columnRefs(target.val)) {
      const said = pick(ref, arm, env);
      if (said !== undefined) return { target, ref, said };
    }
  }
  return undefined;
}

/** Follows a column to tell whether its values are computed from the vault's person tokens (any expression over one counts). */
export class TokenDerivation extends ColumnTracer {
  constructor(lookup: RelationLookup, base: ColumnBase = vaultToken) {
    super(lookup, base);
  }

  protected override passed(target: Json, s: Json, env: Env, depth: number): string | undefined {
    if (isObject(target.val) && isObject(target.val.ColumnRef)) return super.passed(target, s, env, depth);
    const derived = columnRefs(target.val).some((ref) => this.column(refFields(ref), s, env, depth) === undefined);
    return derived ? undefined : `${outputName(target) ?? 'a column'} is computed from no person token`;
  }
}

/** Every column reference in an expression (in its sub-selects too). */
export function columnRefs(tree: unknown): Json[] {
  const out: Json[] = [];
  contains(tree, (n) => {
    if (isObject(n.ColumnRef)) out.push(n);
    return false;
  });
  return out;
}
