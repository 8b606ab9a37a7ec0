import Handlebars from 'handlebars';
import type { HelperOptions } from 'handlebars';
import type { ManifestNode } from '../artifacts/manifest.ts';
import type { ApprovedGeneralizer, Macro } from '../project/types.ts';
import { argumentProblem } from './macro-arguments.ts';
import { quoteIdent, quoteRelation, sqlLiteral } from '../sql/quote.ts';
import { macroParams } from './extract.ts';
import { alignLines, markTemplate, stripMarkers, type LineMap } from './line-map.ts';
import { cteName, filteredSelect, withCtes } from './relations.ts';

/** How one rendering resolves `ref`, `source` and `this`. */
export interface RenderScope {
  /** True when tenant-scoped inputs must be restricted to the bound practices (`$1`). */
  filtered: boolean;
  isIncremental: boolean;
  self: Pick<ManifestNode, 'name' | 'schema' | 'identifier' | 'scope'>;
  lookup(id: string): (Pick<ManifestNode, 'name' | 'kind' | 'scope' | 'materialized' | 'schema' | 'identifier'> & { catalog?: string }) | undefined;
  /** Rendered body of an ephemeral model, in the same filtering mode. */
  ephemeralBody(name: string, filtered: boolean): string;
  tenantColumn: string;
  vars: Record<string, unknown>;
  /**
   * Lineage rendering: output of generalizing macros is wrapped in `tsf_generalized(...)` so the
   * PHI lineage checker can see which columns passed through an approved generalization.
   */
  lineage?: boolean;
  /**
   * Analysis rendering: `ref`, `source` and `this` render as bare reserved names
   * (`"__tsf_ref_<model>"`, `"__tsf_src_<source>__<table>"`, `"__tsf_this_<model>"`) and no CTE is
   * added, so the text holds exactly what the author wrote plus those names. The read check
   * (model-sql.ts) and the lineage gate work on it: any other relation name is a direct read.
   */
  bare?: boolean;
}

interface RenderState {
  scope: RenderScope;
  ctes: Map<string, { name: string; sql: string }>;
  /** Macro calls so far in this rendering, and how deep the current one is (macroGuard). */
  calls: number;
  depth: number;
}

/**
 * A macro calling another ten times, ten levels down, renders 10¹⁰ calls: compile hung with no
 * output, and a macro calling itself ended in "Maximum call stack size exceeded" naming nothing
 * (red-team, 2026-12-07). Far above any real model (the demo's deepest is 2 calls, 2 deep).
 */
const MAX_MACRO_CALLS = 10_000;
const MAX_MACRO_DEPTH = 32;

/** `render` with the rendering's macro call count and depth checked; the error names the macro. */
function macroGuard<T>(st: RenderState, name: string, render: () => T): T {
  if (++st.calls > MAX_MACRO_CALLS) throw new Error(`macro ${name}: more than ${MAX_MACRO_CALLS} macro calls in one model (macros calling macros many times each grow exponentially)`);
  if (st.depth >= MAX_MACRO_DEPTH) throw new Error(`macro ${name}: macros nested more than ${MAX_MACRO_DEPTH} deep (does ${name} call itself?)`);
  st.depth++;
  try {
    return render();
  } catch (err) {
    // Named by the outermost macro too, the one the model calls (where the error is reported).
    const message = (err as Error).message;
    if (st.depth > 1 || message.startsWith(`macro ${name}:`)) throw err;
    throw new Error(`macro ${name}: ${message}`);
  } finally {
    st.depth--;
  }
}

const STATE = Symbol('tsform render state');

/**
 * What `ref`, `source`, `this` and a macro give a template: the text when output, and nothing a
 * template could inspect. The analysed rendering (`bare`) names relations differently from the
 * executed one, so a template that could read that text (`{{#with (ref "x")}}{{#if [15]}}`, a
 * string's own characters and length) could pick harmless SQL for the analysis and PHI for the
 * run. A private field and a prototype method are beyond Handlebars' property lookups (it
 * denies prototype access), and its `lookup` helper, which turns a value into a key, refuses.
 */
class RelationText {
  readonly #text: () => string;
  constructor(text: () => string) {
    this.#text = text;
  }
  toString(): string {
    return this.#text();
  }
}

/** What an approved generalizer rendered: the only expression another generalizer may be given. */
class GeneralizedText extends RelationText {}

/** A model's root context: `is_incremental`, and `{{this}}` as an uninspectable relation. */
class ModelContext extends RelationText {
  constructor(
    readonly is_incremental: boolean,
    text: () => string,
  ) {
    super(text);
  }
}

/** The marker functions of lineage renderings (never executed); see phi-lineage-analyze.ts. */
export const GENERALIZED = 'tsf_generalized';
export const SHIFTED = 'tsf_shifted';
export const GENERALIZED_IF_SHIFTED = 'tsf_generalized_if_shifted';
/** Marks, in a lineage rendering, a column given to an approved generalizer (it must be one as stored). */
export const GENERALIZER_ARGUMENT = 'tsf_column';

/**
 * One Handlebars environment per compile (never the global one): builtins plus the project's
 * macros as both helpers (`{{zip3 "zip"}}`) and partials (`{{> zip3 column="zip"}}`).
 */
export function createRenderer(macros: readonly Macro[], approved: Readonly<Record<string, ApprovedGeneralizer>> = {}) {
  const hb = Handlebars.create();
  hb.registerHelper('lookup', () => {
    throw new Error('the lookup helper is not available in models and macros: a template may not inspect what ref, source or this render to');
  });
  const stateOf = (options: HelperOptions): RenderState => {
    const root = options.data?.root as Record<symbol, RenderState> | undefined;
    const st = root?.[STATE];
    if (!st) throw new Error('internal: helper called outside a tsform render');
    return st;
  };

  const relationFor = (st: RenderState, id: string, cteKey: string): string => {
    const node = st.scope.lookup(id);
    if (!node) throw new Error(`unknown relation '${id}'`);
    if (st.scope.bare) return reservedRelationName(node);
    if (node.kind === 'model' && node.materialized === 'ephemeral' && !node.catalog) {
      const name = cteName('ref', node.name);
      if (!st.ctes.has(name)) st.ctes.set(name, { name, sql: st.scope.ephemeralBody(node.name, st.scope.filtered) });
      return name;
    }
    // tenants.yml's relation holds one row per practice: a tenant-scoped model reads its practices' rows only.
    if (st.scope.filtered && (node.scope === 'tenant' || node.kind === 'tenants')) {
      const name = cteName(cteKey === 'src' ? 'src' : 'ref', node.kind === 'source' ? node.name.replace(/^source:/, '').replace('.', '__') : node.name);
      if (!st.ctes.has(name)) st.ctes.set(name, { name, sql: filteredSelect(node.schema, node.identifier, st.scope.tenantColumn, node.catalog) });
      return name;
    }
    return node.catalog ? `${quoteIdent(node.catalog)}.${quoteRelation(node.schema, node.identifier)}` : quoteRelation(node.schema, node.identifier);
  };

  hb.registerHelper('ref', function (this: unknown, name: string, options: HelperOptions) {
    const text = relationFor(stateOf(options), name, 'ref');
    return new RelationText(() => text);
  });
  hb.registerHelper('source', function (this: unknown, source: string, table: string, options: HelperOptions) {
    const text = relationFor(stateOf(options), `source:${source}.${table}`, 'src');
    return new RelationText(() => text);
  });
  hb.registerHelper('config', () => '');
  hb.registerHelper('var', function (this: unknown, ...args: unknown[]) {
    const options = args.pop() as HelperOptions;
    const [name, fallback] = args as [string, unknown];
    const vars = stateOf(options).scope.vars;
    try {
      return sqlLiteral(Object.hasOwn(vars, name) ? vars[name] : fallback);
    } catch (err) {
      throw new Error(`var '${name}': ${(err as Error).message}`);
    }
  });

  // An approved generalizer's body sees tsform's helpers and the other approved generalizers
  // only. In the models' environment a project macro named like one of its parameters would be
  // called by `{{shift_days}}` in its body (Handlebars looks for a helper before a value), while
  // the analysis rendering takes the shift from the value: a macro file named shift_days.hbs ran
  // another shift than the checks read (red-team, 2026-12-07).
  const sealed = Handlebars.create();
  for (const name of ['lookup', 'ref', 'source', 'config', 'var']) sealed.registerHelper(name, hb.helpers[name]!);

  for (const macro of macros) {
    // Only tsform.yml's reviewed list (checked against the macro's hash by the compiler) makes a
    // macro a generalizer; a header comment in the macro approves nothing.
    const approval = Object.hasOwn(approved, macro.name) ? approved[macro.name] : undefined;
    const template = (approval ? sealed : hb).compile(macro.body, { noEscape: true, strict: false });
    const params = macroParams(macro.body);
    const partial = (context: unknown, options?: RuntimeOptions) => {
      const st = (options?.data?.root as Record<symbol, RenderState> | undefined)?.[STATE];
      return st ? macroGuard(st, macro.name, () => template(context, options)) : template(context, options);
    };
    const helper = function (this: unknown, ...args: unknown[]) {
      const options = args.pop() as HelperOptions;
      const st = stateOf(options);
      const hash = options.hash as Record<string, unknown>;
      for (const [i, value] of [...args.entries(), ...Object.entries(hash)]) {
        // A nested macro's output too: a macro file of the same pull request could hold the `/*`.
        const problem = typeof value === 'string' || value instanceof RelationText ? argumentProblem(String(value)) : undefined;
        if (problem) throw new Error(`macro ${macro.name}: argument ${typeof i === 'number' ? i + 1 : i} ${problem}: a macro's argument must be one SQL expression (a column, a literal, a call)`);
      }
      const ctx: Record<string | symbol, unknown> = { ...hash, args, is_incremental: st.scope.isIncremental };
      params.forEach((p, i) => {
        if (i < args.length) ctx[p] = args[i];
      });
      // Every value the generalizer is given but the shift (which tsf_shifted checks) and another
      // generalizer's output: the lineage refuses one computed in the model (phi-lineage-analyze.ts).
      if (approval && st.scope.lineage) {
        for (const p of Object.keys(ctx)) {
          const value = ctx[p];
          if (p === approval.shift || p === 'args' || value instanceof GeneralizedText) continue;
          if (typeof value === 'string' || value instanceof RelationText) ctx[p] = `${GENERALIZER_ARGUMENT}(${String(value)})`;
        }
      }
      ctx[STATE] = st;
      const sql = macroGuard(st, macro.name, () => template(ctx, { data: { root: ctx } }).trim());
      // Opaque too: the lineage rendering wraps a generalizer's output, so its text differs.
      if (!approval) return new RelationText(() => sql);
      if (!st.scope.lineage) return new GeneralizedText(() => sql);
      if (approval.shift !== undefined) {
        const shiftedBy = String(ctx[approval.shift] ?? 'NULL');
        return new GeneralizedText(() => `${SHIFTED}(${sql}, ${shiftedBy})`);
      }
      return new GeneralizedText(() => `${approval.requiresShifted ? GENERALIZED_IF_SHIFTED : GENERALIZED}(${sql})`);
    };
    for (const env of approval ? [hb, sealed] : [hb]) {
      env.registerPartial(macro.name, partial);
      env.registerHelper(macro.name, helper);
    }
  }

  // A template is compiled once, however many variants (full, incremental, ephemeral modes) use it.
  // `strict: false` renders a missing name as '' (an optional `{{#if flag}}` needs that): every
  // name a template reads is checked against what exists before it renders (template-fields.ts).
  const compiled = new Map<string, HandlebarsTemplateDelegate>();
  const compiledFor = (template: string) => {
    let fn = compiled.get(template);
    if (!fn) compiled.set(template, (fn = hb.compile(template, { noEscape: true, strict: false })));
    return fn;
  };

  const renderParts = (template: string, scope: RenderScope): { body: string; ctes: { name: string; sql: string }[] } => {
    const st: RenderState = { scope, ctes: new Map(), calls: 0, depth: 0 };
    const self = scope.self;
    const thisRelation = scope.bare
      ? { text: cteName('this', self.name), register: () => undefined }
      : scope.filtered && self.scope === 'tenant'
        ? (() => {
            const name = cteName('this', self.name);
            return {
              text: name,
              register: () => st.ctes.set(name, { name, sql: filteredSelect(self.schema, self.identifier, scope.tenantColumn) }),
            };
          })()
        : { text: quoteRelation(self.schema, self.identifier), register: () => undefined };
    const ctx = new ModelContext(scope.isIncremental, () => {
      thisRelation.register();
      return thisRelation.text;
    }) as ModelContext & Record<symbol, unknown>;
    ctx[STATE] = st;
    return { body: compiledFor(template)(ctx), ctes: [...st.ctes.values()] };
  };
  const marked = new Map<string, string | undefined>();

  return {
    /** Renders one model body to a SELECT with tsform's CTEs prepended. */
    render(template: string, scope: RenderScope): string {
      const { body, ctes } = renderParts(template, scope);
      return withCtes(body, ctes);
    },
    /**
     * The same SQL as `render`, with the model file's line of each of its lines (line-map.ts):
     * what errors against compiled SQL are reported at.
     */
    renderMapped(template: string, scope: RenderScope): { sql: string; lines: LineMap } {
      if (!marked.has(template)) marked.set(template, markTemplate(template));
      const markedTemplate = marked.get(template);
      if (markedTemplate === undefined) {
        const sql = this.render(template, scope);
        return { sql, lines: sql.split('\n').map(() => null) };
      }
      const { body, ctes } = renderParts(markedTemplate, scope);
      const stripped = stripMarkers(body);
      const sql = withCtes(stripped.text, ctes);
      return { sql, lines: alignLines(sql, stripped.text, stripped.lines) };
    },
  };
}

export type Renderer = ReturnType<typeof createRenderer>;

/** The reserved name a relation has in an analysis rendering (quoted). */
export function reservedRelationName(node: Pick<ManifestNode, 'name' | 'kind'>): string {
  return node.kind === 'source' ? cteName('src', node.name.replace(/^source:/, '').replace('.', '__')) : cteName('ref', node.name);
}
