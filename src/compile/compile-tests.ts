import type { ManifestTest } from '../artifacts/manifest.ts';
import type { DraftNode } from './draft-node.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import type { GenericTestSpec, Project } from '../project/types.ts';
import { quoteIdent, quoteRelation, sqlLiteral } from '../sql/quote.ts';
import { extractUses, parseTemplate } from './extract.ts';
import { tenantFilter } from './relations.ts';
import { lineColumnAt, lineOfWord } from './line-map.ts';
import { checkModelSql } from './model-sql.ts';
import { reservedRelationName, type Renderer } from './render.ts';

/**
 * Data tests compile to one query each that returns `(tenant, failures)` rows: counts per
 * practice, never the failing values themselves (they could be PHI).
 */
export function compileTests(
  project: Project,
  nodes: Record<string, DraftNode>,
  renderer: Renderer,
  macroNames: ReadonlySet<string>,
  diagnostics: Diagnostic[],
  /** Under `--defer`: the relations a test reads that are not built here come from production. */
  deferred?: { nodes: ReadonlySet<string>; catalog: string },
  /** Checks the names a singular test's template reads, as a model's (template-fields.ts). */
  checkFields?: (ast: hbs.AST.Program, file: string) => void,
): Record<string, ManifestTest> {
  const tc = project.config.tenantColumn;
  const lookup = (id: string) => (deferred?.nodes.has(id) && nodes[id] ? { ...nodes[id], catalog: deferred.catalog } : nodes[id]);
  const tests: Record<string, ManifestTest> = {};
  const add = (t: ManifestTest) => {
    let name = t.name;
    for (let i = 2; tests[name]; i++) name = `${t.name}_${i}`;
    tests[name] = { ...t, name };
  };

  const owners: { node: DraftNode; columns: { name: string; tests: GenericTestSpec[] }[] }[] = [];
  for (const p of project.properties) {
    const node = nodes[p.name];
    if (node) owners.push({ node, columns: p.columns });
  }
  for (const s of project.sources) {
    const node = nodes[`source:${s.source}.${s.name}`];
    if (node) owners.push({ node, columns: s.columns });
  }

  for (const { node, columns } of owners) {
    for (const col of columns) {
      for (const spec of col.tests) {
        const sql = genericTestSql(spec, node, nodes, tc, diagnostics, deferred);
        if (!sql) continue;
        add({
          name: `${spec.kind}_${node.name.replace(/^source:/, '').replace('.', '_')}_${col.name}`,
          attached_to: node.name,
          kind: spec.kind,
          column: col.name,
          file: spec.file,
          line: spec.line,
          sql,
          scope: node.scope,
          depends_on: spec.kind === 'relationships' && spec.to ? [node.name, spec.to] : [node.name],
        });
      }
    }
  }

  for (const t of project.singularTests) {
    const ast = parseTemplate(t.sql, t.file, diagnostics);
    if (!ast) continue;
    const uses = extractUses(ast, t.file, macroNames, diagnostics);
    const before = diagnostics.length;
    checkFields?.(ast, t.file);
    if (diagnostics.length > before) continue;
    const deps = [...uses.refs.map((r) => r.name), ...uses.sources.map((s) => `source:${s.source}.${s.table}`)];
    const missing = deps.filter((d) => !nodes[d]);
    if (missing.length > 0 || deps.length === 0) {
      diagnostics.push(
        diagnostic(Codes.unknownRef, missing.length ? `singular test refers to unknown ${missing.join(', ')}` : 'a singular test must ref at least one model', { file: t.file, line: 1 }),
      );
      continue;
    }
    const tenantScoped = deps.some((d) => nodes[d]!.scope === 'tenant');
    const attached = nodes[deps[0]!]!;
    // A singular test runs as the owner like a model: the same check of what its SQL does.
    const bareScope = { filtered: false, isIncremental: false, self: { name: t.name, schema: attached.schema, identifier: attached.identifier, scope: 'global' as const }, lookup: (id: string) => nodes[id], ephemeralBody: () => '', tenantColumn: tc, vars: project.config.vars, bare: true };
    const bare = renderer.renderMapped(t.sql, bareScope);
    const findings = checkModelSql({ sql: bare.sql, allowed: new Set(deps.map((d) => reservedRelationName(nodes[d]!).slice(1, -1))) });
    for (const f of findings) {
      // As for models: a syntax error where the parser stopped, a finding about a name where the name is.
      const line = (f.offset !== undefined ? bare.lines[lineColumnAt(bare.sql, f.offset).line - 1] : undefined) ?? lineOfWord(t.sql, f.near);
      diagnostics.push(diagnostic(Codes.modelSql, `singular test ${t.name} ${f.message}`, { file: t.file, line }));
    }
    if (findings.length > 0) continue;
    const body = renderer.render(t.sql, {
      filtered: tenantScoped,
      isIncremental: false,
      self: { name: t.name, schema: attached.schema, identifier: attached.identifier, scope: tenantScoped ? 'tenant' : 'global' },
      lookup,
      ephemeralBody: () => {
        throw new Error('singular tests cannot ref ephemeral models');
      },
      tenantColumn: tc,
      vars: project.config.vars,
    });
    const sql = tenantScoped
      ? `SELECT failing.${quoteIdent(tc)} AS tenant, count(*) AS failures FROM (\n${body}\n) AS failing GROUP BY 1`
      : `SELECT NULL AS tenant, count(*) AS failures FROM (\n${body}\n) AS failing`;
    add({ name: t.name, attached_to: attached.name, kind: 'singular', file: t.file, line: 1, sql, scope: tenantScoped ? 'tenant' : 'global', depends_on: deps });
  }
  return tests;
}

function genericTestSql(
  spec: GenericTestSpec,
  node: DraftNode,
  nodes: Record<string, DraftNode>,
  tc: string,
  diagnostics: Diagnostic[],
  deferred?: { nodes: ReadonlySet<string>; catalog: string },
): string | undefined {
  const rel = quoteRelation(node.schema, node.identifier);
  const col = `t.${quoteIdent(spec.column)}`;
  const tenant = node.scope === 'tenant';
  const where = (cond: string) => (tenant ? `${tenantFilter(tc, 't')} AND ${cond}` : cond);
  const select = (from: string, cond: string) =>
    tenant
      ? `SELECT t.${quoteIdent(tc)} AS tenant, count(*) AS failures FROM ${from} WHERE ${where(cond)} GROUP BY 1`
      : `SELECT NULL AS tenant, count(*) AS failures FROM ${from} WHERE ${cond}`;

  switch (spec.kind) {
    case 'not_null':
      return select(`${rel} AS t`, `${col} IS NULL`);
    case 'unique': {
      const keys = tenant ? `t.${quoteIdent(tc)}, ${col}` : col;
      const inner = `SELECT ${keys} FROM ${rel} AS t WHERE ${where(`${col} IS NOT NULL`)} GROUP BY ${keys} HAVING count(*) > 1`;
      return tenant
        ? `SELECT d.${quoteIdent(tc)} AS tenant, count(*) AS failures FROM (${inner}) AS d GROUP BY 1`
        : `SELECT NULL AS tenant, count(*) AS failures FROM (${inner}) AS d`;
    }
    case 'accepted_values':
      return select(`${rel} AS t`, `${col} IS NOT NULL AND CAST(${col} AS VARCHAR) NOT IN (${(spec.values ?? []).map((v) => sqlLiteral(String(v))).join(', ')})`);
    case 'relationships': {
      const parent = spec.to ? nodes[spec.to] : undefined;
      if (!parent || !spec.field) {
        diagnostics.push(diagnostic(Codes.unknownRef, `relationships test on '${node.name}.${spec.column}' refers to unknown model '${spec.to}'`, { file: spec.file, line: spec.line }));
        return undefined;
      }
      const sameTenant = tenant && parent.scope === 'tenant' ? ` AND p.${quoteIdent(tc)} = t.${quoteIdent(tc)}` : '';
      const parentRel = deferred?.nodes.has(parent.name) ? `${quoteIdent(deferred.catalog)}.${quoteRelation(parent.schema, parent.identifier)}` : quoteRelation(parent.schema, parent.identifier);
      const exists = `SELECT 1 FROM ${parentRel} AS p WHERE p.${quoteIdent(spec.field)} = ${col}${sameTenant}`;
      return select(`${rel} AS t`, `${col} IS NOT NULL AND NOT EXISTS (${exists})`);
    }
    default: {
      const never: never = spec.kind;
      throw new Error(`unknown test kind ${String(never)}`);
    }
  }
}
