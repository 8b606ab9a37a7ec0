import type { Manifest, ManifestNode } from '../artifacts/manifest.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import type { ColumnSpec, ModelProperties, Project, SourceTable } from '../project/types.ts';
import { correlatedReadsOf } from './correlated-reads.ts';
import { emptyUses, extractUses, parseTemplate, type TemplateUses } from './extract.ts';
import { modelLineAt } from './line-map.ts';
export { selectsColumn } from './selects-column.ts';

/**
 * `tsform compile --strict`: the contracts an analyst's pull request must keep before it merges
 * (issue 7). Pure: reads the loaded project and the compiled manifest, never the file system.
 * Run it on a project that compiled without errors; where the manifest lacks something (a model
 * that failed to render has no SQL) the check that needs it is skipped for that model.
 *
 * One diagnostic per problem, in check order, each with the file relative to the project root
 * and the line of the yml entry (column, test, model or source table) or line 1 of the .sql or
 * .hbs file:
 *
 * - TSF216 every source column is classified: its yml says `phi:` explicitly; every source table
 *   declares at least one column.
 * - TSF217 every research-layer model (pseudonymized, or in the research schema) has a yml entry
 *   with a description, and every column listed there has a description.
 * - TSF218 every tenant-scoped, non-ephemeral model carries the tenant column: its yml lists it
 *   (when the yml lists columns at all). That its SQL outputs it is checked with the model's
 *   parsed output columns in security/strict-columns.ts (`selectsColumn` where they are unknown).
 * - TSF216 (models), TSF219, TSF224, TSF225: the checks that read a model's output columns with
 *   the SQL parser live in security/strict-columns.ts (compile/ cannot import security/); the CLI
 *   runs both (cli/strict-stage.ts).
 * - TSF220 no unused macro: every macro under macros/ is used by a model, by a singular test, or
 *   by another macro that is itself used.
 * - TSF226 (warning) an incremental model reads `{{this}}` in a sub-select correlated with the
 *   query around it (correlated-reads.ts): PostgreSQL runs it once per source row.
 */
export function strictChecks(project: Project, manifest: Manifest): Diagnostic[] {
  return [
    ...checkClassified(project),
    ...checkDescribed(project, manifest),
    ...checkTenantColumn(project, manifest),
    ...checkUnusedMacros(project, manifest),
    ...checkCorrelatedThis(project, manifest),
  ];
}

/** Incremental models whose high-water mark is a sub-select over `{{this}}` run once per source row. */
function checkCorrelatedThis(project: Project, manifest: Manifest): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const model of project.models) {
    const node = manifest.models[model.name];
    const sql = node?.compiled_incremental_sql;
    if (!node || sql === undefined) continue;
    for (const offset of correlatedReadsOf(sql, `__tsf_this_${node.name}`)) {
      out.push(
        diagnostic(
          Codes.strictCorrelatedThis,
          `incremental model '${model.name}' reads {{this}} in a sub-select correlated with the query around it: PostgreSQL runs it once per source row, so a large practice's run grows with the square of its rows. Take the high-water mark once per practice (select ${manifest.tenant_column}, max(…) from {{this}} group by ${manifest.tenant_column}) and join it`,
          { file: model.file, line: modelLineAt({ compiled_sql: sql, compiled_lines: node.compiled_incremental_lines }, offset) ?? 1 },
          'warning',
        ),
      );
    }
  }
  return out;
}

/** Until the loader records it, a column counts as classified (the check cannot tell). */
function phiIsExplicit(c: ColumnSpec): boolean {
  return (c as { phiExplicit?: boolean }).phiExplicit !== false;
}

const sourceName = (s: SourceTable) => `${s.source}.${s.name}`;
const lineOr1 = (line: number | undefined) => line ?? 1;

// ---------------------------------------------------------------------------------------------
// 1. every source column is classified

function checkClassified(project: Project): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const s of project.sources) {
    if (s.columns.length === 0) {
      out.push(
        diagnostic(Codes.strictUnclassifiedColumn, `source '${sourceName(s)}' declares no columns: list every column with its phi class (direct, quasi or none)`, {
          file: s.file,
          line: lineOr1(s.line),
        }),
      );
      continue;
    }
    for (const c of s.columns) {
      if (phiIsExplicit(c)) continue;
      out.push(
        diagnostic(Codes.strictUnclassifiedColumn, `source column '${sourceName(s)}.${c.name}' has no phi class: say phi: direct, quasi or none`, {
          file: c.file,
          line: lineOr1(c.line),
        }),
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 2. every research-layer model and column is described

function isResearchLayer(node: ManifestNode, project: Project): boolean {
  return node.pseudonymized || node.schema === project.config.schemas.research;
}

const described = (text: string | undefined) => text !== undefined && text.trim() !== '';

function checkDescribed(project: Project, manifest: Manifest): Diagnostic[] {
  const out: Diagnostic[] = [];
  const props = propertiesByModel(project);
  for (const model of project.models) {
    const node = manifest.models[model.name];
    if (!node || !isResearchLayer(node, project)) continue;
    const p = props.get(model.name);
    if (!p) {
      out.push(
        diagnostic(Codes.strictUndescribed, `research-layer model '${model.name}' has no yml entry: describe it and each of its columns in a models/**/*.yml`, {
          file: model.file,
          line: 1,
        }),
      );
      continue;
    }
    if (!described(p.description)) {
      out.push(diagnostic(Codes.strictUndescribed, `research-layer model '${model.name}' has no description`, { file: p.file, line: lineOr1(p.line) }));
    }
    for (const c of p.columns) {
      if (described(c.description)) continue;
      out.push(diagnostic(Codes.strictUndescribed, `column '${model.name}.${c.name}' of a research-layer model has no description`, { file: c.file, line: lineOr1(c.line) }));
    }
  }
  return out;
}

/** The first yml entry of each model (a duplicate is the loader's business, not ours). */
function propertiesByModel(project: Project): Map<string, ModelProperties> {
  const map = new Map<string, ModelProperties>();
  for (const p of project.properties) if (!map.has(p.name)) map.set(p.name, p);
  return map;
}

// ---------------------------------------------------------------------------------------------
// 3. every tenant-scoped model's output carries the tenant column

function checkTenantColumn(project: Project, manifest: Manifest): Diagnostic[] {
  const out: Diagnostic[] = [];
  const tc = manifest.tenant_column;
  const props = propertiesByModel(project);
  for (const model of project.models) {
    const node = manifest.models[model.name];
    if (!node || node.scope !== 'tenant' || node.materialized === 'ephemeral') continue;
    const p = props.get(model.name);
    if (p && p.columns.length > 0 && !p.columns.some((c) => c.name === tc)) {
      out.push(
        diagnostic(Codes.strictNoTenantColumn, `tenant-scoped model '${model.name}' does not list the tenant column '${tc}' among its yml columns`, {
          file: p.file,
          line: lineOr1(p.line),
        }),
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 4. no unused macro

function checkUnusedMacros(project: Project, manifest: Manifest): Diagnostic[] {
  const macroNames = new Set(project.macros.map((m) => m.name));
  // Parse errors are compile's to report; here they only mean "uses nothing we can see".
  const usesOf = (text: string, file: string): TemplateUses => {
    const ignored: Diagnostic[] = [];
    const ast = parseTemplate(text, file, ignored);
    return ast ? extractUses(ast, file, macroNames, ignored) : emptyUses();
  };
  const byMacro = new Map(project.macros.map((m) => [m.name, usesOf(m.body, m.file).macros]));

  const used = new Set<string>();
  const queue: string[] = [];
  // A model's manifest `macros` already includes the macros its macros call.
  for (const node of Object.values(manifest.models)) queue.push(...node.macros);
  for (const t of project.singularTests) queue.push(...usesOf(t.sql, t.file).macros);
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (used.has(name)) continue;
    used.add(name);
    queue.push(...(byMacro.get(name) ?? []));
  }

  return project.macros
    .filter((m) => !used.has(m.name))
    .map((m) =>
      diagnostic(Codes.strictUnusedMacro, `macro '${m.name}' is not used by any model, singular test or used macro: delete it or use it`, { file: m.file, line: 1 }),
    );
}
