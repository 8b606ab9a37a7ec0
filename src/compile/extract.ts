import Handlebars from 'handlebars';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';

type AstNode = hbs.AST.Node;

/** What a template asks for, read statically from its AST: no rendering needed to build the DAG. */
export interface TemplateUses {
  refs: { name: string; line: number }[];
  sources: { source: string; table: string; line: number }[];
  config: Record<string, string | number | boolean>;
  configLine?: number;
  vars: { name: string; hasDefault: boolean; line: number }[];
  /** Macros called as helpers (`{{zip3 col}}`) or partials (`{{> zip3}}`). */
  macros: string[];
  usesThis: boolean;
  /** The first line of the template itself that renders `{{this}}` (not one in a macro, nor `this` in an `each` or `with` block, the block's item). */
  thisLine?: number;
}

export function emptyUses(): TemplateUses {
  return { refs: [], sources: [], config: {}, vars: [], macros: [], usesThis: false };
}

const BUILTINS = new Set(['ref', 'source', 'config', 'var', 'this', 'is_incremental', 'if', 'unless', 'each', 'with', 'else']);

/**
 * Parses a template; a syntax error becomes a diagnostic with the template's line. A dbt habit
 * (`{{ ref('x') }}`, Jinja call syntax) gets the tsform form instead of Handlebars' parser dump.
 */
export function parseTemplate(text: string, file: string, diagnostics: Diagnostic[]): hbs.AST.Program | undefined {
  let program: hbs.AST.Program;
  try {
    program = Handlebars.parse(text);
  } catch (err) {
    const dbtCalls = jinjaCalls(text);
    if (dbtCalls.length > 0) {
      for (const c of dbtCalls) {
        diagnostics.push(diagnostic(Codes.templateSyntax, `template syntax error: \`${c.written}\` is dbt's Jinja syntax; tsform templates are Handlebars: write \`${c.tsform}\``, { file, line: c.line }));
      }
      return undefined;
    }
    const unclosed = unclosedBlock(text);
    if (unclosed) {
      diagnostics.push(diagnostic(Codes.templateSyntax, `template syntax error: {{#${unclosed.name}}} is never closed: end it with {{/${unclosed.name}}}`, { file, line: unclosed.line }));
      return undefined;
    }
    const msg = (err as Error).message;
    const fromText = /line (\d+)/.exec(msg)?.[1];
    const line = (err as { lineNumber?: number }).lineNumber ?? (fromText ? Number(fromText) : undefined);
    diagnostics.push(diagnostic(Codes.templateSyntax, `template syntax error: ${msg.split('\n').slice(0, 4).join(' ').replace(/\s+/g, ' ')}`, { file, line }));
    return undefined;
  }
  // Handlebars reads a Jinja tag as plain text: it would reach the database as SQL.
  const tags = [...jinjaTags(text), ...jinjaComments(text)];
  for (const t of tags) {
    diagnostics.push(diagnostic(Codes.templateSyntax, `template syntax error: \`${t.written}\` is a Jinja tag (dbt); tsform templates are Handlebars: ${t.tsform}`, { file, line: t.line }));
  }
  return tags.length > 0 ? undefined : program;
}

/**
 * The block opened last that no `{{/name}}` closes, by a scan of the tags (comments skipped):
 * Handlebars reported it at the file's last line, with its parser's expected-token dump.
 */
function unclosedBlock(text: string): { name: string; line: number } | undefined {
  const open: { name: string; line: number }[] = [];
  for (const m of text.replace(/\{\{!--[\s\S]*?--\}\}|\{\{![\s\S]*?\}\}/g, (c) => c.replace(/[^\n]/g, ' ')).matchAll(/\{\{~?\s*([#/])\s*([\w.-]+)/g)) {
    const line = text.slice(0, m.index).split('\n').length;
    if (m[1] === '#') open.push({ name: m[2]!, line });
    else if (open.at(-1)?.name === m[2]) open.pop();
    else return undefined;
  }
  return open.at(-1);
}

/** `{# … #}`: a Jinja comment, plain text to Handlebars (the database then failed at `{`). */
function jinjaComments(text: string): { written: string; tsform: string; line: number }[] {
  return [...text.matchAll(/(?<!\{)\{#[\s\S]*?#\}/g)].map((m) => ({
    written: m[0].length > 40 ? `${m[0].slice(0, 37)}…` : m[0],
    tsform: 'write a comment as `{{!-- … --}}` (or SQL\'s `-- …`)',
    line: text.slice(0, m.index).split('\n').length,
  }));
}

const JINJA_TAG = /\{%-?\s*(if|elif|else|endif|for|endfor|set|macro|endmacro|call|endcall)\b([^%]*)-?%\}/g;

/** `{% if is_incremental() %}` and its kin, with the Handlebars form. */
function jinjaTags(text: string): { written: string; tsform: string; line: number }[] {
  return [...text.matchAll(JINJA_TAG)].map((m) => {
    const [written, tag, rest] = m as unknown as [string, string, string];
    const line = text.slice(0, m.index).split('\n').length;
    const condition = rest.trim().replace(/-$/, '').trim();
    const tsform =
      tag === 'if'
        ? /^is_incremental\(\)$/.test(condition)
          ? 'write `{{#if is_incremental}}`'
          : 'write `{{#if <name>}}` (Handlebars tests a value, not an expression)'
        : tag === 'elif' || tag === 'else'
          ? 'write `{{else}}`'
          : tag === 'endif'
            ? 'write `{{/if}}`'
            : tag === 'for'
              ? 'write `{{#each <list>}}`'
              : tag === 'endfor'
                ? 'write `{{/each}}`'
                : 'a macro is a file in macros/*.hbs, called as `{{name arg}}`; a value is a var (`{{var "name"}}`)';
    return { written, tsform, line };
  });
}

/** `{{ ref('x') }}`, `{{ source('a', 'b') }}`, `{{ config(materialized='table') }}`, `{{ var('v') }}`, `{{ is_incremental() }}`. */
const JINJA_CALL = /\{\{-?\s*(ref|source|config|var|is_incremental)\s*\(([^()}]*)\)\s*-?\}\}/g;

/** Every dbt-style call in a template, with its line and the Handlebars form tsform reads. */
export function jinjaCalls(text: string): { written: string; tsform: string; line: number }[] {
  return [...text.matchAll(JINJA_CALL)].map((m) => {
    const [written, helper, rawArgs] = m as unknown as [string, string, string];
    const line = text.slice(0, m.index).split('\n').length;
    if (helper === 'is_incremental') return { written, tsform: '{{#if is_incremental}} … {{/if}}', line };
    const args = rawArgs
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean)
      .map((a) => a.replace(/^'([^']*)'$/, '"$1"').replace(/^(\w+)\s*=\s*'([^']*)'$/, '$1="$2"').replace(/^(\w+)\s*=\s*/, '$1='));
    return { written, tsform: `{{${[helper, ...args].join(' ')}}}`, line };
  });
}

export function extractUses(program: hbs.AST.Program, file: string, macroNames: ReadonlySet<string>, diagnostics: Diagnostic[]): TemplateUses {
  const uses = emptyUses();
  const literal = (p: hbs.AST.Expression, what: string, line: number): string | number | boolean | undefined => {
    if (p.type === 'StringLiteral' || p.type === 'NumberLiteral' || p.type === 'BooleanLiteral') {
      return (p as hbs.AST.StringLiteral).value;
    }
    // `materialized=view`, `{{ref stg_x}}`: a bare word is a name Handlebars looks up, not text.
    const word = p.type === 'PathExpression' && /^[\w-]+$/.test((p as hbs.AST.PathExpression).original) ? (p as hbs.AST.PathExpression).original : undefined;
    const quote = word === undefined ? '' : `: quote the value, "${word}" (unquoted, it is a name looked up while rendering)`;
    diagnostics.push(diagnostic(Codes.dynamicArgument, `${what} needs literal arguments so dependencies can be read without rendering${quote}`, { file, line }));
    return undefined;
  };

  const visitCall = (path: hbs.AST.PathExpression, params: hbs.AST.Expression[], hash: hbs.AST.Hash | undefined, line: number) => {
    const name = path.original;
    if (name === 'ref') {
      const v = params[0] && literal(params[0], '{{ref}}', line);
      if (params.length !== 1) diagnostics.push(diagnostic(Codes.dynamicArgument, '{{ref}} takes exactly one model name', { file, line }));
      else if (typeof v === 'string') uses.refs.push({ name: v, line });
    } else if (name === 'source') {
      if (params.length !== 2) {
        diagnostics.push(diagnostic(Codes.dynamicArgument, '{{source}} takes a source name and a table name', { file, line }));
        return;
      }
      const s = literal(params[0]!, '{{source}}', line);
      const t = literal(params[1]!, '{{source}}', line);
      if (typeof s === 'string' && typeof t === 'string') uses.sources.push({ source: s, table: t, line });
    } else if (name === 'config') {
      // Read when the model is compiled, whatever a block's condition: inside `{{#if is_incremental}}`
      // it applied to every build, as if written at the top (red-team, 2026-12-07).
      if (blockDepth > 0) diagnostics.push(diagnostic(Codes.invalidConfig, '{{config}} inside a {{#…}} block is read whatever the block decides: write it at the top level of the model', { file, line }));
      uses.configLine ??= line;
      for (const pair of hash?.pairs ?? []) {
        const v = literal(pair.value, `{{config ${pair.key}}}`, line);
        // The last one won in silence (`tags="a,b" tags="c"` kept c), within one {{config}} or across two.
        if (Object.hasOwn(uses.config, pair.key)) diagnostics.push(diagnostic(Codes.invalidConfig, `config key '${pair.key}' is given twice; give it once${pair.key === 'tags' || pair.key === 'unique_key' ? ` (a list is one value: ${pair.key}="a,b")` : ''}`, { file, line }));
        else if (v !== undefined) uses.config[pair.key] = v;
      }
    } else if (name === 'var') {
      const v = params[0] && literal(params[0], '{{var}}', line);
      if (typeof v === 'string') uses.vars.push({ name: v, hasDefault: params.length > 1, line });
    } else if (selfAt(path) !== undefined) {
      readsSelf(path, line);
    } else if (macroNames.has(name) && !uses.macros.includes(name)) {
      uses.macros.push(name);
    }
  };

  // Inside `{{#each}}` / `{{#with}}`, `this` is the block's item, not the model's relation.
  let itemDepth = 0;
  let blockDepth = 0;
  /**
   * The model's own relation, however it is spelt: the context itself (`this`, `.`, `./this`,
   * `this.this`, `../this` up to the root), its field `this` (`[this]`, `this.[this]`), `@root`,
   * `@root.[this]`. Only `this` was recognized, so the other spellings passed the check that only
   * an incremental model reads it (red-team, 2026-12-07). `root`: the relation inside
   * `{{#each}}` too; `context`: the relation only outside such a block.
   */
  const selfAt = (p: hbs.AST.PathExpression): 'root' | 'context' | undefined => {
    const self = p.data
      ? p.parts[0] === 'root' && (p.parts.length === 1 || (p.parts.length === 2 && p.parts[1] === 'this'))
      : p.parts.length === 0 || (p.parts.length === 1 && p.parts[0] === 'this');
    if (!self) return undefined;
    return p.data || (itemDepth > 0 && p.depth >= itemDepth) ? 'root' : 'context';
  };
  const readsSelf = (p: hbs.AST.PathExpression, line: number) => {
    uses.usesThis = true;
    if (selfAt(p) === 'root' || itemDepth === 0) uses.thisLine ??= line;
  };
  const visit = (node: AstNode | undefined | null): void => {
    if (!node) return;
    const line = node.loc?.start.line ?? 1;
    switch (node.type) {
      case 'Program':
        for (const s of (node as hbs.AST.Program).body) visit(s);
        return;
      case 'MustacheStatement':
      case 'SubExpression': {
        const n = node as hbs.AST.MustacheStatement;
        if (n.path.type === 'PathExpression') visitCall(n.path as hbs.AST.PathExpression, n.params, n.hash, line);
        for (const p of n.params) visit(p);
        for (const pair of n.hash?.pairs ?? []) visit(pair.value);
        return;
      }
      case 'BlockStatement': {
        const n = node as hbs.AST.BlockStatement;
        if (n.path.type === 'PathExpression') visitCall(n.path as hbs.AST.PathExpression, n.params, n.hash, line);
        for (const p of n.params) visit(p);
        const item = n.path.type === 'PathExpression' && ['each', 'with'].includes((n.path as hbs.AST.PathExpression).original) ? 1 : 0;
        itemDepth += item;
        blockDepth++;
        visit(n.program);
        itemDepth -= item;
        visit(n.inverse);
        blockDepth--;
        return;
      }
      case 'PartialStatement':
      case 'PartialBlockStatement': {
        const n = node as hbs.AST.PartialStatement;
        const pname = n.name.type === 'PathExpression' ? (n.name as hbs.AST.PathExpression).original : undefined;
        if (pname && !uses.macros.includes(pname)) {
          if (macroNames.has(pname)) uses.macros.push(pname);
          else diagnostics.push(diagnostic(Codes.unknownMacro, `unknown macro (partial) '${pname}'`, { file, line }));
        }
        return;
      }
      case 'PathExpression': {
        const p = node as hbs.AST.PathExpression;
        if (selfAt(p) !== undefined) readsSelf(p, line);
        return;
      }
      default:
        return;
    }
  };
  visit(program);
  return uses;
}

/** Names a template calls that are neither builtins nor macros: likely typos. */
export function isBuiltinHelper(name: string): boolean {
  return BUILTINS.has(name);
}

/** `{{!-- params: column, other --}}` at the top of a macro names its positional arguments. */
export function macroParams(body: string): string[] {
  const m = /\{\{!--\s*params:\s*([^-}]*)--\}\}/.exec(body) ?? /\{\{!\s*params:\s*([^}]*)\}\}/.exec(body);
  return m?.[1] ? m[1].split(',').map((s) => s.trim()).filter(Boolean) : [];
}

/** The line of a model's first `{{config}}`, read again from its text (checks after compile: the manifest keeps no line). */
export function configLineOf(text: string): number | undefined {
  try {
    return extractUses(Handlebars.parse(text), '', new Set(), []).configLine;
  } catch {
    return undefined;
  }
}
