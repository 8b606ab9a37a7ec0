/**
 * Every name a template reads, checked against what exists where it is read. Handlebars renders
 * a name it cannot find as '' (tsform compiles with `strict: false`, as helpers must see missing
 * hash keys): `'{{target.name}}' as t` compiled to `'' as t`, and `where n > {{min_visits}}` (meant
 * `{{var "min_visits"}}`) or a macro called without its argument (`coalesce(, 0)`) reached the SQL
 * parser as a misleading TSF222 (red-team, 2026-12-08). Read from the AST, not while rendering,
 * so each finding has its line and a suggestion, and nothing is rendered from a broken template.
 */
import { Codes, diagnostic, type Code, type Diagnostic } from '../errors.ts';
import { suggest } from '../project/suggest.ts';
import { macroParams } from './extract.ts';

type Node = hbs.AST.Node;
type Path = hbs.AST.PathExpression;

/** Handlebars' own helpers and tsform's (render.ts registers them in every environment). */
const HANDLEBARS_HELPERS = ['if', 'unless', 'each', 'with', 'log', 'lookup'];
const TSFORM_HELPERS = ['ref', 'source', 'config', 'var'];
/** Their arguments are read as literals by extract.ts (TSF204 for anything else). */
const LITERAL_ARGUMENTS = new Set(TSFORM_HELPERS);
const EACH_DATA = new Set(['index', 'first', 'last', 'key']);

/** What a macro takes: its `params:` (positional or by name), or the names its body reads. */
export interface MacroSignature {
  name: string;
  /** `{{!-- params: a, b --}}`: positional, or given by name. */
  params: string[];
  /** Without `params:`, the names the body reads: given by name (`{{> m column="x"}}`). */
  named: string[];
  /** Names read only as an `{{#if}}` / `{{#unless}}` condition: optional (absent is false). */
  optional: Set<string>;
  /** The body reads `args` (every positional argument): any number may be given. */
  variadic: boolean;
}

export interface FieldCheckContext {
  /** `model` (a model or singular test: `is_incremental` and `{{this}}`), or the macro being read. */
  kind: 'model' | { macro: string; params: string[] };
  /** Helpers callable here: tsform's, Handlebars', and the project's macros (or the approved generalizers only). */
  macros: ReadonlyMap<string, MacroSignature>;
  /** Var names of the project (tsform.yml, --vars, and those read with a default), for `{{name}}` → `{{var "name"}}`. */
  vars: readonly string[];
}

/** A frame: the names its context has (`undefined`: the value an `#each` / `#with` gives, opaque). */
interface Frame {
  fields: Set<string> | undefined;
}

/**
 * Checks `program`'s names; returns the names read from the root context that it did not know
 * (for a macro without `params:`, its named parameters) and which of them are conditions only.
 */
export function checkTemplateFields(program: hbs.AST.Program, file: string, ctx: FieldCheckContext, diagnostics: Diagnostic[]): { free: string[]; conditionsOnly: Set<string>; readsArgs: boolean } {
  const macro = typeof ctx.kind === 'object' ? ctx.kind : undefined;
  const helpers = new Set([...HANDLEBARS_HELPERS, ...TSFORM_HELPERS, ...ctx.macros.keys()]);
  const rootFields = new Set(macro ? ['is_incremental', 'args', ...macro.params] : ['is_incremental']);
  const frames: Frame[] = [{ fields: rootFields }];
  const blockParams: string[][] = [];
  let eachDepth = 0;
  const free = new Map<string, boolean>(); // name → read only as a condition
  let readsArgs = false;
  const error = (code: Code, message: string, node: Node) => diagnostics.push(diagnostic(code, message, { file, line: node.loc?.start.line ?? 1 }));

  const describeUnknown = (name: string, original: string): string => {
    if (ctx.vars.includes(name)) return `; a var is read with {{var "${name}"}}`;
    if (name === 'target') return ": tsform templates have no 'target' (a model compiles to the same SQL for every target); a value that differs per run is a var ({{var \"name\"}}, set in tsform.yml vars or with --vars)";
    if (original.startsWith('@')) return '';
    const known = [...rootFields, ...free.keys(), ...helpers].filter((k) => k !== 'lookup');
    return suggest(name, known);
  };

  /** A name read as a value (`{{x}}` without arguments, an argument, a condition). */
  const readField = (p: Path, asCondition: boolean) => {
    const scoped = /^\.|this\b/.test(p.original);
    if (p.data) {
      const head = p.parts[0] ?? '';
      if (head === 'root') {
        const field = p.parts[1];
        if (field !== undefined && !rootFields.has(field)) error(Codes.renderFailed, `'${p.original}' is not a field of the template's root (${[...rootFields].join(', ')})`, p);
        return;
      }
      if (EACH_DATA.has(head) && eachDepth > 0) return;
      error(Codes.renderFailed, `'${p.original}' is not defined here: ${EACH_DATA.has(head) ? `@${head} exists inside {{#each}} only` : '@index, @first, @last and @key exist inside {{#each}}, @root everywhere'}`, p);
      return;
    }
    const name = p.parts[0];
    if (name === undefined) return; // `this`, `.`, `..`: the context itself
    if (!scoped && p.depth === 0 && blockParams.some((b) => b.includes(name))) {
      // `v.x` of a block parameter read '' as `this.x` does (red-team): a block's values have no fields a template may read.
      if (p.parts.length > 1) error(Codes.renderFailed, `'${p.original}' reads a field of the block parameter '${name}', which has none a template may read: it would render as nothing`, p);
      return;
    }
    if (p.depth >= frames.length) {
      error(Codes.renderFailed, `'${p.original}' goes above the template's root`, p);
      return;
    }
    const frame = frames[frames.length - 1 - p.depth]!;
    if (frame.fields === undefined) {
      error(Codes.renderFailed, `'${p.original}' reads a field of the value {{#each}} / {{#with}} gives, which has none a template may read: use {{this}}, a block parameter (as |x|) or ../${name}`, p);
      return;
    }
    if (frame.fields.has(name)) {
      if (name === 'args' && frame === frames[0]) readsArgs = true;
      return;
    }
    // A macro without `params:` takes what its body reads, by name: its callers are checked.
    if (macro && macro.params.length === 0 && frame === frames[0] && !scoped && p.parts.length === 1) {
      free.set(name, (free.get(name) ?? true) && asCondition);
      return;
    }
    const where = macro ? `macro ${macro.macro}: '${p.original}' is not one of its parameters (params: ${macro.params.join(', ') || 'none'})` : `'${p.original}' is not a field a model can read (is_incremental, this)`;
    error(Codes.renderFailed, `${where}: it would render as nothing${describeUnknown(name, p.original)}`, p);
  };

  const visitValue = (e: hbs.AST.Expression, asCondition = false) => {
    if (e.type === 'PathExpression') readField(e as Path, asCondition);
    else if (e.type === 'SubExpression') visitCall(e as hbs.AST.SubExpression, true);
  };

  /** A mustache, sub-expression or block's own path and arguments. */
  const visitCall = (n: hbs.AST.MustacheStatement | hbs.AST.SubExpression | hbs.AST.BlockStatement, isCall: boolean): boolean => {
    if (n.path.type !== 'PathExpression') {
      // `{{"min_visits"}}`, `{{true}}`: Handlebars looks a literal up as a name, and it rendered as nothing (red-team).
      const value = String((n.path as hbs.AST.StringLiteral).value);
      error(Codes.renderFailed, `{{${JSON.stringify(value)}}}: a literal in place of a name is looked up as a field and would render as nothing${ctx.vars.includes(value) ? `; a var is read with {{var "${value}"}}` : '; text is written outside {{ }}'}`, n);
      return false;
    }
    const p = n.path as Path;
    const name = p.parts.length === 1 && !p.data && p.depth === 0 && !/^\.|this\b/.test(p.original) ? p.parts[0]! : undefined;
    const hasArguments = n.params.length > 0 || (n.hash?.pairs.length ?? 0) > 0;
    const isHelper = name !== undefined && helpers.has(name) && !blockParams.some((b) => b.includes(name));
    if (!isHelper) {
      if (isCall || hasArguments) {
        error(Codes.renderFailed, `unknown helper or macro '${p.original}'${suggest(p.original, [...helpers].filter((h) => h !== 'lookup'))}: a macro is a file macros/<name>.hbs`, p);
        return false;
      }
      readField(p, false);
      return false;
    }
    if (LITERAL_ARGUMENTS.has(name)) return true;
    const condition = name === 'if' || name === 'unless';
    for (const v of n.params) visitValue(v, condition);
    for (const pair of n.hash?.pairs ?? []) visitValue(pair.value);
    const signature = ctx.macros.get(name);
    if (signature) checkMacroCall(signature, n.params.length, n.hash?.pairs ?? [], p, false);
    return true;
  };

  const checkMacroCall = (m: MacroSignature, positional: number, pairs: hbs.AST.HashPair[], at: Node, partial: boolean) => {
    const all = [...m.params, ...m.named];
    const call = `macro ${m.name} (params: ${m.params.join(', ') || m.named.join(', ') || 'none'})`;
    if (partial && positional > 0) error(Codes.renderFailed, `${call}: a partial ({{> ${m.name}}}) takes its arguments by name (${all.map((a) => `${a}="…"`).join(' ') || 'none'}); call {{${m.name} …}} to give them in order`, at);
    else if (positional > m.params.length && !m.variadic) error(Codes.renderFailed, `${call}: given ${positional} argument${positional === 1 ? '' : 's'}, takes ${m.params.length}`, at);
    for (const pair of pairs) {
      if (!all.includes(pair.key)) error(Codes.renderFailed, `${call}: no parameter '${pair.key}'${suggest(pair.key, all)}`, at);
    }
    const inherited = partial ? frames[frames.length - 1]!.fields : undefined;
    for (const [i, param] of m.params.entries()) {
      if (i < positional || pairs.some((p) => p.key === param) || m.optional.has(param) || inherited?.has(param)) continue;
      error(Codes.renderFailed, `${call}: argument '${param}' is missing (it would render as nothing)`, at);
    }
    for (const param of m.named) {
      if (pairs.some((p) => p.key === param) || m.optional.has(param) || inherited?.has(param)) continue;
      error(Codes.renderFailed, `${call}: argument '${param}' is missing (it would render as nothing); give it as ${param}="…"`, at);
    }
  };

  const visitBody = (program: hbs.AST.Program | undefined | null, frame?: Frame, each = false) => {
    if (!program) return;
    if (frame) frames.push(frame);
    if (each) eachDepth++;
    blockParams.push(program.blockParams ?? []);
    for (const s of program.body) visit(s);
    blockParams.pop();
    if (each) eachDepth--;
    if (frame) frames.pop();
  };

  const visit = (node: Node) => {
    switch (node.type) {
      case 'MustacheStatement':
        visitCall(node as hbs.AST.MustacheStatement, false);
        return;
      case 'BlockStatement': {
        const b = node as hbs.AST.BlockStatement;
        const isHelper = visitCall(b, false);
        const name = (b.path as Path).parts[0];
        // `each` and `with` (and a section over a value) give their block another context; `if`, `unless` and macros do not.
        const changes = !isHelper || name === 'each' || name === 'with';
        visitBody(b.program, changes ? { fields: undefined } : undefined, name === 'each');
        visitBody(b.inverse);
        return;
      }
      case 'PartialStatement':
      case 'PartialBlockStatement': {
        const n = node as hbs.AST.PartialStatement;
        for (const pair of n.hash?.pairs ?? []) visitValue(pair.value);
        const pname = n.name.type === 'PathExpression' ? (n.name as Path).original : undefined;
        const signature = pname === undefined ? undefined : ctx.macros.get(pname);
        if (signature) checkMacroCall(signature, n.params.length, n.hash?.pairs ?? [], n, true);
        return;
      }
      default:
        return;
    }
  };
  visitBody(program);
  return { free: [...free.keys()], conditionsOnly: new Set([...free].filter(([, c]) => c).map(([k]) => k)), readsArgs };
}

/**
 * Checks every macro body and returns the signatures calls are checked against. A generalizer
 * (`generalizers`, tsform.yml's list) is rendered where only tsform's helpers and the other
 * generalizers exist (render.ts), so only those are helpers in its body.
 */
export function macroSignatures(
  macros: readonly { name: string; file: string; body: string; ast: hbs.AST.Program | undefined }[],
  generalizers: ReadonlySet<string>,
  vars: readonly string[],
  diagnostics: Diagnostic[],
): Map<string, MacroSignature> {
  const signatures = new Map<string, MacroSignature>();
  // Named parameters depend on which names are helpers: every macro is one, so names come first.
  for (const m of macros) signatures.set(m.name, { name: m.name, params: macroParams(m.body), named: [], optional: new Set(), variadic: false });
  const visibleTo = (name: string) => (generalizers.has(name) ? new Map([...signatures].filter(([n]) => generalizers.has(n))) : signatures);
  for (const m of macros) {
    if (!m.ast) continue;
    const sig = signatures.get(m.name)!;
    // What a body reads does not depend on other signatures: read it first (findings dropped), so
    // that calls between macros, and a macro's calls of itself, are checked against whole signatures.
    const found = checkTemplateFields(m.ast, m.file, { kind: { macro: m.name, params: sig.params }, macros: visibleTo(m.name), vars }, []);
    sig.named = found.free;
    sig.variadic = found.readsArgs;
    for (const name of found.conditionsOnly) sig.optional.add(name);
    // A declared parameter read only as a condition is optional too.
    for (const p of sig.params) if (conditionOnly(m.ast, p)) sig.optional.add(p);
  }
  for (const m of macros) {
    if (m.ast) checkTemplateFields(m.ast, m.file, { kind: { macro: m.name, params: signatures.get(m.name)!.params }, macros: visibleTo(m.name), vars }, diagnostics);
  }
  return signatures;
}

/** Whether `name` is read in `program` only as the condition of an `#if` / `#unless`. */
function conditionOnly(program: hbs.AST.Program, name: string): boolean {
  let asCondition = false;
  let otherwise = false;
  const walk = (node: Node | null | undefined, condition: boolean): void => {
    if (!node) return;
    switch (node.type) {
      case 'Program':
        for (const s of (node as hbs.AST.Program).body) walk(s, false);
        return;
      case 'PathExpression': {
        const p = node as Path;
        if (!p.data && p.depth === 0 && p.parts.length >= 1 && p.parts[0] === name) {
          if (condition) asCondition = true;
          else otherwise = true;
        }
        return;
      }
      case 'MustacheStatement':
      case 'SubExpression':
      case 'BlockStatement': {
        const n = node as hbs.AST.BlockStatement;
        const head = n.path.type === 'PathExpression' ? (n.path as Path).original : '';
        walk(n.path, false);
        for (const p of n.params) walk(p, head === 'if' || head === 'unless');
        for (const pair of n.hash?.pairs ?? []) walk(pair.value, false);
        walk(n.program, false);
        walk(n.inverse, false);
        return;
      }
      case 'PartialStatement':
        for (const pair of (node as hbs.AST.PartialStatement).hash?.pairs ?? []) walk(pair.value, false);
        return;
      default:
        return;
    }
  };
  walk(program, false);
  return asCondition && !otherwise;
}
