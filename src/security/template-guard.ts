/**
 * A project may override a built-in DDL template (`policies/<name>.hbs`), and an override is a
 * file in a pull request like a model. Before this guard an override was run as written: a
 * `protect_table.hbs` without `FORCE ROW LEVEL SECURITY`, with a policy `USING (true)`, or with a
 * GRANT to another role compiled, and `tsform run` protected every new relation with it. Only
 * `policies verify` against a live warehouse would have noticed.
 *
 * So an override may add to what the built-in renders and never take away: every statement of
 * the built-in rendering must appear in the override's rendering for the same relation, in the
 * same order, and each statement added is one of a few kinds that can only narrow what a role
 * sees (a RESTRICTIVE policy on the relation, an index on its plain columns, a comment). The
 * comparison is on libpg-query's parse tree (layout and comments do not count).
 */
import { loadModule, parseSync } from 'libpg-query';
import { charOffsetOfByte } from '../compile/line-map.ts';
import { isObject, outsideCatalog, sval, type PgJson } from '../compile/pg-tree.ts';
import type { TemplateName } from './templates.ts';

await loadModule();

interface Statement {
  tree: PgJson;
  /** The tree without source positions: equal for the same statement however it is laid out. */
  key: string;
  text: string;
}

export interface Weakening {
  reason: string;
  /** Index of the offending statement among the override's rendered statements, when there is one. */
  statement?: number;
}

/**
 * Why `override` (rendered) weakens `builtin` (rendered from the same context), or undefined.
 * `relation` is the protected relation a `protect_*` rendering is for.
 */
export function overrideWeakening(template: TemplateName, builtin: string, override: string, relation?: { schema: string; name: string }): Weakening | undefined {
  // A server with standard_conforming_strings off ends `'a\'` elsewhere than this parser does,
  // so an override could show the guard the built-in statements and run something else
  // (`tsform policies render | psql`; tsform's own sessions set it on). No template needs one.
  if (override.includes('\\') && !builtin.includes('\\')) {
    return { reason: 'contains a backslash, which a server with standard_conforming_strings off reads differently inside a string literal' };
  }
  const mine = statements(builtin);
  let theirs: Statement[];
  try {
    theirs = statements(override);
  } catch (e) {
    return { reason: `does not parse as PostgreSQL (${(e as Error).message})` };
  }
  const extras: { s: Statement; at: number }[] = [];
  let next = 0;
  theirs.forEach((s, at) => {
    if (next < mine.length && s.key === mine[next]!.key) next++;
    else extras.push({ s, at });
  });
  if (next < mine.length) {
    const missing = mine[next]!;
    return { reason: `leaves out the built-in statement \`${oneLine(missing.text)}\` (or reorders it): an override may add to the built-in, never remove or replace` };
  }
  const builtinPolicies = new Set(mine.flatMap((s) => policyNameOf(s.tree) ?? []));
  const addedRestrictive = new Set(extras.flatMap(({ s }) => (isRestrictivePolicy(s.tree) ? (policyNameOf(s.tree) ?? []) : [])));
  for (const { s, at } of extras) {
    const refusal = refusalOf(template, s.tree, relation, builtinPolicies, addedRestrictive);
    if (refusal) return { reason: `adds \`${oneLine(s.text)}\`, which ${refusal}; ${ALLOWED}`, statement: at };
  }
  return undefined;
}

const ALLOWED = 'an override may only add RESTRICTIVE policies on the relation (their conditions on its columns and constants), indexes on its plain columns, and comments';

function refusalOf(template: TemplateName, tree: PgJson, relation: { schema: string; name: string } | undefined, builtinPolicies: ReadonlySet<string>, addedRestrictive: ReadonlySet<string>): string | undefined {
  if (isObject(tree.CommentStmt)) return undefined;
  if (template !== 'protect_table' || !relation) return `is not a comment, the only addition ${template} takes`;
  const onRelation = (rv: unknown) => isObject(rv) && rv.schemaname === relation.schema && rv.relname === relation.name;
  if (isObject(tree.CreatePolicyStmt)) {
    const p = tree.CreatePolicyStmt;
    if (p.permissive === true) return 'is a PERMISSIVE policy (permissive policies are OR-ed: any one of them widens what a role sees)';
    if (!onRelation(p.table)) return 'is a policy on another relation';
    if (builtinPolicies.has(String(p.policy_name))) return 'reuses the name of a built-in policy';
    for (const expr of [p.qual, p.with_check]) {
      const bad = expr === undefined ? undefined : unsafeExpression(expr);
      if (bad) return `has a condition with ${bad} (a restrictive condition may be evaluated on rows the role cannot see, so it may not call anything)`;
    }
    return undefined;
  }
  if (isObject(tree.DropStmt)) {
    const d = tree.DropStmt;
    if (d.removeType !== 'OBJECT_POLICY') return 'drops something other than a policy';
    const names = Array.isArray(d.objects) ? d.objects.map(dropTarget) : [];
    if (names.some((n) => !n || n.schema !== relation.schema || n.table !== relation.name || !addedRestrictive.has(n.policy) || builtinPolicies.has(n.policy))) {
      return 'drops a policy this override does not create as RESTRICTIVE';
    }
    return undefined;
  }
  if (isObject(tree.IndexStmt)) {
    const i = tree.IndexStmt;
    if (!onRelation(i.relation)) return 'is an index on another relation';
    if (i.whereClause !== undefined) return 'is a partial index (its predicate may call functions)';
    const params = [i.indexParams, i.indexIncludingParams].flatMap((l) => (Array.isArray(l) ? l : []));
    if (params.some((p) => !isObject(p) || !isObject(p.IndexElem) || typeof p.IndexElem.name !== 'string' || p.IndexElem.expr !== undefined)) return 'indexes an expression (it may call functions)';
    return undefined;
  }
  return `is not among the additions an override may make (${Object.keys(tree)[0] ?? 'statement'})`;
}

/** Node kinds a restrictive condition may hold: columns, constants, comparisons, AND/OR/NOT, IS NULL, casts, current_user. */
const SAFE_NODES = new Set(['ColumnRef', 'A_Const', 'A_Expr', 'BoolExpr', 'NullTest', 'BooleanTest', 'TypeCast', 'TypeName', 'SQLValueFunction', 'List', 'String', 'Integer', 'Float', 'Boolean', 'A_ArrayExpr']);
const SAFE_OPERATORS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=', '~~', '!~~', '~~*', '!~~*', 'BETWEEN', 'NOT BETWEEN']);

/**
 * pg_catalog's scalar types, as the parser names them (`int` is pg_catalog.int4, `text` is text).
 * A cast to anything else may run code on rows the role may not see: a domain's CHECK, a type's
 * input function, in whichever schema the name resolves to.
 */
const BUILTIN_TYPES = new Set(['text', 'varchar', 'bpchar', 'name', 'bool', 'int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'date', 'time', 'timetz', 'timestamp', 'timestamptz', 'interval', 'uuid']);

function builtinType(names: readonly string[]): boolean {
  const last = names[names.length - 1];
  if (last === undefined || !BUILTIN_TYPES.has(last)) return false;
  return !outsideCatalog(names);
}

function unsafeExpression(node: unknown): string | undefined {
  if (Array.isArray(node)) {
    for (const n of node) {
      const bad = unsafeExpression(n);
      if (bad) return bad;
    }
    return undefined;
  }
  if (!isObject(node)) return undefined;
  for (const [kind, body] of Object.entries(node)) {
    if (/^[A-Z]/.test(kind)) {
      if (!SAFE_NODES.has(kind)) return `a ${kind}`;
      if (kind === 'A_Expr' && isObject(body)) {
        const op = Array.isArray(body.name) ? body.name.map(sval) : [];
        if (op.length !== 1 || !SAFE_OPERATORS.has(op[0] ?? '')) return `the operator ${op.join('.') || '?'}`;
      }
      if (kind === 'TypeCast' && isObject(body)) {
        const names = isObject(body.typeName) && Array.isArray(body.typeName.names) ? body.typeName.names.map((n) => sval(n) ?? '?') : [];
        if (!builtinType(names)) return `a cast to ${names.join('.') || '?'} (a type other than the built-in scalars may run code: a domain's CHECK, an input function)`;
      }
    }
    const bad = unsafeExpression(body);
    if (bad) return bad;
  }
  return undefined;
}

function isRestrictivePolicy(tree: PgJson): boolean {
  return isObject(tree.CreatePolicyStmt) && tree.CreatePolicyStmt.permissive !== true;
}

function policyNameOf(tree: PgJson): string | undefined {
  if (isObject(tree.CreatePolicyStmt)) return String(tree.CreatePolicyStmt.policy_name);
  if (isObject(tree.DropStmt) && tree.DropStmt.removeType === 'OBJECT_POLICY' && Array.isArray(tree.DropStmt.objects)) return dropTarget(tree.DropStmt.objects[0])?.policy;
  return undefined;
}

/** `DROP POLICY p ON s.t` holds the list [s, t, p]. */
function dropTarget(o: unknown): { schema?: string; table: string; policy: string } | undefined {
  const items = isObject(o) && isObject(o.List) && Array.isArray(o.List.items) ? o.List.items.map(sval) : [];
  if (items.length < 2 || items.some((i) => i === undefined)) return undefined;
  const [policy, table, schema] = [...items].reverse() as string[];
  return { schema, table: table!, policy: policy! };
}

function statements(sql: string): Statement[] {
  return (parseSync(sql).stmts ?? []).map((s) => {
    // the parser's locations count UTF-8 bytes
    const start = (s.stmt_location as number | undefined) ?? 0;
    const text = s.stmt_len ? sql.slice(charOffsetOfByte(sql, start), charOffsetOfByte(sql, start + (s.stmt_len as number))) : sql.slice(charOffsetOfByte(sql, start));
    return { tree: s.stmt as PgJson, key: JSON.stringify(s.stmt, (k, v) => (k === 'location' ? undefined : v)), text: text.trim() };
  });
}

const LINE_MARK = /\/\*tsf_line (\d+)\*\//g;

/**
 * The template line where the `statement`-th rendered statement starts. Rendering is not line for
 * line (a block helper alone on its line leaves no line), so the template is rendered again with
 * each line prefixed by a comment naming it, and the last such comment before the statement's
 * first token is its line. Undefined when that rendering fails (a mustache spanning lines).
 */
export function templateLine(templateText: string, render: (text: string) => string, statement: number): number | undefined {
  const marked = templateText.split('\n').map((l, i) => `/*tsf_line ${i + 1}*/${l}`).join('\n');
  try {
    const sql = render(marked);
    const s = parseSync(sql).stmts?.[statement];
    if (!s) return undefined;
    let p = charOffsetOfByte(sql, (s.stmt_location as number | undefined) ?? 0);
    for (let m; (m = /^(\s+|\/\*.*?\*\/|--[^\n]*)/s.exec(sql.slice(p))); ) p += m[0].length;
    const marks = [...sql.slice(0, p).matchAll(LINE_MARK)];
    return marks.length > 0 ? Number(marks[marks.length - 1]![1]) : undefined;
  } catch {
    return undefined;
  }
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 160 ? `${flat.slice(0, 157)}...` : flat;
}
