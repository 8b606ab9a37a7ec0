import Handlebars from 'handlebars';
import type { HelperOptions } from 'handlebars';
import type { ManifestNode } from '../artifacts/manifest.ts';
import type { Macro } from '../project/types.ts';
import { quoteIdent, quoteRelation, sqlLiteral } from '../sql/quote.ts';
import { macroGeneralizes, macroParams } from './extract.ts';
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
}

interface RenderState {
  scope: RenderScope;
  ctes: Map<string, { name: string; sql: string }>;
}

const STATE = Symbol('tsform render state');

/** The marker function of lineage renderings (never executed). */
export const GENERALIZED = 'tsf_generalized';

/**
 * One Handlebars environment per compile (never the global one): builtins plus the project's
 * macros as both helpers (`{{zip3 "zip"}}`) and partials (`{{> zip3 column="zip"}}`).
 */
export function createRenderer(macros: readonly Macro[]) {
  const hb = Handlebars.create();
  const stateOf = (options: HelperOptions): RenderState => {
    const root = options.data?.root as Record<symbol, RenderState> | undefined;
    const st = root?.[STATE];
    if (!st) throw new Error('internal: helper called outside a tsform render');
    return st;
  };

  const relationFor = (st: RenderState, id: string, cteKey: string): string => {
    const node = st.scope.lookup(id);
    if (!node) throw new Error(`unknown relation '${id}'`);
    if (node.kind === 'model' && node.materialized === 'ephemeral' && !node.catalog) {
      const name = cteName('ref', node.name);
      if (!st.ctes.has(name)) st.ctes.set(name, { name, sql: st.scope.ephemeralBody(node.name, st.scope.filtered) });
      return name;
    }
    if (st.scope.filtered && node.scope === 'tenant') {
      const name = cteName(cteKey === 'src' ? 'src' : 'ref', node.kind === 'source' ? node.name.replace(/^source:/, '').replace('.', '__') : node.name);
      if (!st.ctes.has(name)) st.ctes.set(name, { name, sql: filteredSelect(node.schema, node.identifier, st.scope.tenantColumn, node.catalog) });
      return name;
    }
    return node.catalog ? `${quoteIdent(node.catalog)}.${quoteRelation(node.schema, node.identifier)}` : quoteRelation(node.schema, node.identifier);
  };

  hb.registerHelper('ref', function (this: unknown, name: string, options: HelperOptions) {
    return relationFor(stateOf(options), name, 'ref');
  });
  hb.registerHelper('source', function (this: unknown, source: string, table: string, options: HelperOptions) {
    return relationFor(stateOf(options), `source:${source}.${table}`, 'src');
  });
  hb.registerHelper('config', () => '');
  hb.registerHelper('var', function (this: unknown, ...args: unknown[]) {
    const options = args.pop() as HelperOptions;
    const [name, fallback] = args as [string, unknown];
    const vars = stateOf(options).scope.vars;
    return sqlLiteral(Object.hasOwn(vars, name) ? vars[name] : fallback);
  });

  for (const macro of macros) {
    const template = hb.compile(macro.body, { noEscape: true, strict: false });
    const params = macroParams(macro.body);
    const generalizes = macroGeneralizes(macro.body);
    hb.registerPartial(macro.name, template);
    hb.registerHelper(macro.name, function (this: unknown, ...args: unknown[]) {
      const options = args.pop() as HelperOptions;
      const st = stateOf(options);
      const ctx: Record<string | symbol, unknown> = { ...(options.hash as object), args, is_incremental: st.scope.isIncremental };
      params.forEach((p, i) => {
        if (i < args.length) ctx[p] = args[i];
      });
      ctx[STATE] = st;
      const sql = template(ctx, { data: { root: ctx } }).trim();
      return st.scope.lineage && generalizes ? `${GENERALIZED}(${sql})` : sql;
    });
  }

  // A template is compiled once, however many variants (full, incremental, ephemeral modes) use it.
  const compiled = new Map<string, HandlebarsTemplateDelegate>();
  const compiledFor = (template: string) => {
    let fn = compiled.get(template);
    if (!fn) compiled.set(template, (fn = hb.compile(template, { noEscape: true, strict: false })));
    return fn;
  };

  return {
    /** Renders one model body to a SELECT with tsform's CTEs prepended. */
    render(template: string, scope: RenderScope): string {
      const st: RenderState = { scope, ctes: new Map() };
      const self = scope.self;
      const thisRelation =
        scope.filtered && self.scope === 'tenant'
          ? (() => {
              const name = cteName('this', self.name);
              return {
                text: name,
                register: () => st.ctes.set(name, { name, sql: filteredSelect(self.schema, self.identifier, scope.tenantColumn) }),
              };
            })()
          : { text: quoteRelation(self.schema, self.identifier), register: () => undefined };
      const ctx: Record<string | symbol, unknown> = {
        is_incremental: scope.isIncremental,
        toString() {
          thisRelation.register();
          return thisRelation.text;
        },
      };
      ctx[STATE] = st;
      const body = compiledFor(template)(ctx);
      return withCtes(body, [...st.ctes.values()]);
    },
  };
}

export type Renderer = ReturnType<typeof createRenderer>;
