import type { Manifest } from '../artifacts/manifest.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import type { ColumnSpec, ModelProperties, Project, SourceTable } from '../project/types.ts';
import { configLineOf } from '../compile/extract.ts';
import { modelLineAt } from '../compile/line-map.ts';
import { selectItemOffset } from '../compile/model-sql.ts';
import { selectsColumn } from '../compile/selects-column.ts';
import { deriveOutputColumns, type OutputColumns } from './model-output-columns.ts';

/**
 * The --strict checks of what a model's columns are (issue 15), beside compile/strict-checks.ts
 * (which cannot see the SQL parser: compile/ does not import security/). Pure.
 *
 * - TSF216 every model column is classified: the model has a yml entry that lists columns, each
 *   with an explicit `phi:`, and every column its SQL outputs is listed there;
 * - TSF224 every column the yml lists is one the SQL outputs (else its tests fail at run time
 *   with the engine's binder error, and its phi class classifies nothing);
 * - TSF219 every relationships test's `field` is a column of its target: a model's output
 *   columns, a seed's CSV header, a built-in relation's columns, a source's yml columns; a model
 *   whose columns are unknown is checked against its yml list instead;
 * - TSF218 every tenant-scoped, non-ephemeral model outputs the tenant column (its output
 *   columns; where they are unknown, the select-list heuristic `selectsColumn`, which gives `*`
 *   the benefit of the doubt); the yml half of TSF218 is in compile/strict-checks.ts;
 * - TSF205 every unique_key column is one the model outputs, at its `{{config}}` line (else the
 *   first build passed and every merge after it failed with the engine's binder error about
 *   tsform's alias `st`; a run refuses it too, TSF403, execute/strategies/unique-key.ts);
 * - TSF225 (warning) a model whose output columns could not be derived from its SQL: checked
 *   against DESCRIBE on the target when the caller gave `described`, else not checked.
 *
 * Names compare case-insensitively, as DuckDB matches them (PostgreSQL folds unquoted names; a
 * quoted mixed-case name that differs only in case from its yml entry is not caught).
 */
export interface StrictColumnOptions {
  /** Output columns of models, read with DESCRIBE on a built target (the CLI's fallback). */
  described?: Record<string, string[]>;
  /** The target `described` came from, for the notice. */
  target?: string;
}

export function strictColumnChecks(project: Project, manifest: Manifest, opts: StrictColumnOptions = {}): Diagnostic[] {
  const outputs = deriveOutputColumns(project, manifest, opts.described);
  return [
    ...checkTenantColumnOutput(project, manifest, outputs),
    ...checkUniqueKeyOutput(project, manifest, outputs),
    ...checkModelColumns(project, manifest, outputs, opts),
    ...checkRelationships(project, manifest, outputs),
  ];
}

function checkUniqueKeyOutput(project: Project, manifest: Manifest, outputs: OutputColumns): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const model of project.models) {
    const node = manifest.models[model.name];
    const known = outputs.known[model.name];
    if (!node || node.materialized !== 'incremental' || !known) continue;
    const produced = new Set(known.map(lower));
    const missing = node.unique_key.filter((k) => !produced.has(lower(k)));
    if (missing.length === 0) continue;
    out.push(
      diagnostic(
        Codes.invalidConfig,
        `${model.name}: unique_key ${missing.map((k) => `'${k}'`).join(', ')} is not an output column of the model's SQL (it outputs ${known.map((c) => `'${c}'`).join(', ')}): a merge matches rows on it`,
        { file: model.file, line: configLineOf(model.sql) ?? 1 },
      ),
    );
  }
  return out;
}

function checkTenantColumnOutput(project: Project, manifest: Manifest, outputs: OutputColumns): Diagnostic[] {
  const out: Diagnostic[] = [];
  const tc = manifest.tenant_column;
  for (const model of project.models) {
    const node = manifest.models[model.name];
    if (!node || node.scope !== 'tenant' || node.materialized === 'ephemeral') continue;
    const known = outputs.known[model.name];
    const selects = known ? known.some((c) => lower(c) === lower(tc)) : selectsColumn(node.compiled_sql, tc);
    if (selects) continue;
    out.push(
      diagnostic(Codes.strictNoTenantColumn, `tenant-scoped model '${model.name}' does not select the tenant column '${tc}' in its final select list`, {
        file: model.file,
        // At the final select list, not line 1 (a model's CTEs come first).
        line: modelLineAt(node, selectItemOffset(node.compiled_sql)) ?? 1,
      }),
    );
  }
  return out;
}

const lower = (s: string) => s.toLowerCase();
const lineOr1 = (line: number | undefined) => line ?? 1;

/** The first yml entry of each model (a duplicate is the loader's business). */
function propertiesByModel(project: Project): Map<string, ModelProperties> {
  const map = new Map<string, ModelProperties>();
  for (const p of project.properties) if (!map.has(p.name)) map.set(p.name, p);
  return map;
}

function checkModelColumns(project: Project, manifest: Manifest, outputs: OutputColumns, opts: StrictColumnOptions): Diagnostic[] {
  const out: Diagnostic[] = [];
  const props = propertiesByModel(project);
  for (const model of project.models) {
    const node = manifest.models[model.name];
    if (!node) continue;
    const p = props.get(model.name);
    const derived = outputs.known[model.name];
    const fromTarget = opts.described?.[model.name] !== undefined;
    const why = outputs.unknown[model.name];
    if (!derived && why !== undefined) {
      out.push(
        diagnostic(
          Codes.strictColumnsUnknown,
          `cannot derive the output columns of '${model.name}' from its SQL (${why})${
            opts.target === undefined
              ? '; its yml columns are not checked against its output: run compile --strict --target <name> on a built target to check them with DESCRIBE'
              : `, and DESCRIBE on target '${opts.target}' found no such relation: its yml columns are not checked against its output`
          }`,
          { file: model.file, line: 1 },
          'warning',
        ),
      );
    } else if (fromTarget) {
      out.push(
        diagnostic(Codes.strictColumnsUnknown, `output columns of '${model.name}' taken from DESCRIBE on target '${opts.target ?? '?'}' (its SQL does not tell them)`, { file: model.file, line: 1 }, 'warning'),
      );
    }
    if (!p) {
      out.push(
        diagnostic(Codes.strictUnclassifiedColumn, `model '${model.name}' has no yml entry: list its columns with their phi class (direct, quasi or none) in a models/**/*.yml`, {
          file: model.file,
          line: 1,
        }),
      );
      continue;
    }
    if (p.columns.length === 0) {
      out.push(diagnostic(Codes.strictUnclassifiedColumn, `model '${model.name}' lists no columns: list each with its phi class (direct, quasi or none)`, { file: p.file, line: lineOr1(p.line) }));
    }
    for (const c of p.columns) {
      if (c.phiExplicit) continue;
      out.push(diagnostic(Codes.strictUnclassifiedColumn, `model column '${model.name}.${c.name}' has no phi class: say phi: direct, quasi or none`, { file: c.file, line: lineOr1(c.line) }));
    }
    if (!derived) continue;
    const listed = new Set(p.columns.map((c) => lower(c.name)));
    const produced = new Set(derived.map(lower));
    for (const col of derived) {
      if (listed.has(lower(col))) continue;
      out.push(
        diagnostic(Codes.strictUnclassifiedColumn, `model '${model.name}' outputs column '${col}', which its yml does not list: add it with its phi class (direct, quasi or none)`, {
          file: p.file,
          line: lineOr1(p.line),
        }),
      );
    }
    for (const c of p.columns) {
      if (produced.has(lower(c.name))) continue;
      out.push(
        diagnostic(Codes.strictColumnNotOutput, `yml column '${model.name}.${c.name}' is not an output column of the model's SQL${fromTarget ? ` (DESCRIBE on target '${opts.target ?? '?'}')` : ''}: remove it or fix its name`, {
          file: c.file,
          line: lineOr1(c.line),
        }),
      );
    }
  }
  return out;
}

const sourceName = (s: SourceTable) => `${s.source}.${s.name}`;

function checkRelationships(project: Project, manifest: Manifest, outputs: OutputColumns): Diagnostic[] {
  const out: Diagnostic[] = [];
  const props = propertiesByModel(project);
  const sources = new Map(project.sources.map((s) => [`source:${sourceName(s)}`, s]));
  const seeds = new Map(project.seeds.map((s) => [s.name, s]));
  /** The target's columns, and what they are, or undefined when nothing is known to check against. */
  const columnsOf = (to: string): { names: string[]; from: string } | undefined => {
    const known = outputs.known[to];
    if (known) return { names: known, from: 'outputs' };
    const listed = props.get(to)?.columns ?? sources.get(to)?.columns;
    if (listed && listed.length > 0) return { names: listed.map((c) => c.name), from: 'lists' };
    const header = seeds.get(to)?.header;
    if (header) return { names: header, from: 'has' };
    const builtin = manifest.builtins[to];
    return builtin ? { names: Object.keys(builtin.columns), from: 'has' } : undefined;
  };
  const owners: { name: string; columns: ColumnSpec[] }[] = [
    ...project.properties.map((p) => ({ name: p.name, columns: p.columns })),
    ...project.sources.map((s) => ({ name: `source:${sourceName(s)}`, columns: s.columns })),
  ];
  for (const owner of owners) {
    for (const col of owner.columns) {
      for (const t of col.tests) {
        if (t.kind !== 'relationships' || !t.to || !t.field) continue;
        const target = columnsOf(t.to);
        if (!target || target.names.some((n) => lower(n) === lower(t.field!))) continue;
        out.push(
          diagnostic(
            Codes.strictUnknownTestColumn,
            `relationships test on '${owner.name}.${col.name}' refers to '${t.to}.${t.field}', but '${t.to}' ${target.from} no column '${t.field}' (it ${target.from} ${target.names.map((c) => `'${c}'`).join(', ')})`,
            { file: t.file, line: lineOr1(t.line) },
          ),
        );
      }
    }
  }
  return out;
}
