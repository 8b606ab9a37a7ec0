import { createHash } from 'node:crypto';
import {
  MANIFEST_SCHEMA_VERSION,
  type BuiltinNode,
  type Manifest,
  type ManifestNode,
  type ModelNode,
  type SeedNode,
  type SourceNode,
} from '../artifacts/manifest.ts';
import { Codes, diagnostic, hasErrors, type Diagnostic } from '../errors.ts';
import { DEFAULT_SECURITY_SCHEMA } from '../project/load-policies.ts';
import { suggest } from '../project/suggest.ts';
import type { Project } from '../project/types.ts';
import { compileTests } from './compile-tests.ts';
import { columnsOf, manifestCapture } from './manifest-fields.ts';
import type { DraftNode, ModelDraft } from './draft-node.ts';
import { emptyUses, extractUses, parseTemplate, type TemplateUses } from './extract.ts';
import { resolveModelConfig } from './model-config.ts';
import { checkPartitionNames, checkRelationCollisions, checkSources } from './relation-collisions.ts';
import { checkPracticeListExposure, checkScopes } from './scope-checks.ts';
import { approvedGeneralizers, checkPersonRows, checkWhatItDoes, checkWithheldGlobalRead, checkWithheldResearchModel } from './model-checks.ts';
import { createRenderer, type Renderer, type RenderScope } from './render.ts';
import { nodeColumnNames } from './relation-columns.ts';
import { checkTemplateFields, macroSignatures } from './template-fields.ts';
import { checkReferences, checkVarOverrides, withMacroUses, withVarOverrides } from './template-references.ts';

export const TENANTS_RELATION = 'tenants';
export const VAULT_TOKENS = 'vault_person_tokens';

export interface CompileResult {
  /** With errors in `diagnostics`, `models` holds only the models that rendered. */
  manifest: Manifest;
  diagnostics: Diagnostic[];
  /** What each model reads, as far as it could be read statically (also for models that did not render). */
  dependsOn: Record<string, string[]>;
  /** model → relation it reads → the line of its {{ref}} / {{source}} (for diagnostics about that read). */
  readLines: Record<string, Record<string, number>>;
}

/**
 * Project → Manifest. Pure: no file system, no database. Every model is rendered once (plus its
 * `is_incremental` variant); practice ids are never part of the text.
 */
export interface CompileOptions {
  /**
   * `--defer`: these relations are not built in this run and are read from the production
   * warehouse, attached as `catalog`.
   */
  deferred?: { nodes: ReadonlySet<string>; catalog: string };
  /** `--vars`: override tsform.yml's vars for this compile (dbt's `--vars`). */
  vars?: Record<string, unknown>;
}

export function compileProject(loaded: Project, options: CompileOptions = {}): CompileResult {
  const diagnostics: Diagnostic[] = [...loaded.diagnostics];
  const project = withVarOverrides(loaded, options.vars);
  const { config } = project;
  const macroNames = new Set(project.macros.map((m) => m.name));

  // Macros may themselves call ref/source/var: their uses count for the models that call them.
  const macroUses = new Map<string, TemplateUses>();
  const macroAsts = project.macros.map((macro) => ({ ...macro, ast: parseTemplate(macro.body, macro.file, diagnostics) }));
  for (const macro of macroAsts) macroUses.set(macro.name, macro.ast ? extractUses(macro.ast, macro.file, macroNames, diagnostics) : emptyUses());
  const varNames = [...new Set([...Object.keys(config.vars), ...[...macroUses.values()].flatMap((u) => u.vars.map((v) => v.name))])];
  const signatures = macroSignatures(macroAsts, new Set(Object.keys(config.privacy?.generalizers ?? {})), varNames, diagnostics);
  const checkFields = (ast: hbs.AST.Program, file: string) => checkTemplateFields(ast, file, { kind: 'model', macros: signatures, vars: varNames }, diagnostics);

  const nodes: Record<string, DraftNode> = {};
  const sources: Record<string, SourceNode> = {};
  const seeds: Record<string, SeedNode> = {};
  const builtins: Record<string, BuiltinNode> = {};
  const models: Record<string, ModelDraft> = {};

  builtins[TENANTS_RELATION] = {
    name: TENANTS_RELATION,
    kind: 'tenants',
    path: 'tenants.yml',
    scope: 'shared',
    materialized: 'table',
    schema: config.schemas.meta,
    identifier: TENANTS_RELATION,
    depends_on: [],
    description: 'One row per practice from tenants.yml: id, name, time zone, SLA, tags, pool.',
    columns: {
      [config.tenantColumn]: { phi: 'none' },
      name: { phi: 'none' },
      timezone: { phi: 'none' },
      ready_by: { phi: 'none' },
      pool: { phi: 'none' },
      tags: { phi: 'none' },
    },
    tags: [],
    unique_key: [config.tenantColumn],
    pseudonymized: false,
    macros: [],
    vars: [],
    checksum: '',
  };
  if (config.privacy) {
    // The vault's token map: one row per (practice, patient), maintained per practice before its
    // research models. Identifiable (links tokens to patient ids): never pseudonymized.
    builtins[VAULT_TOKENS] = {
      name: VAULT_TOKENS,
      kind: 'vault',
      identity_model: config.privacy.identityModel,
      path: 'tsform.yml',
      scope: 'tenant',
      materialized: 'table',
      schema: config.schemas.vault,
      identifier: 'person_tokens',
      depends_on: [config.privacy.identityModel],
      description: 'Person token (one per person across practices, resolved in the vault from keyed match keys; stable when records join), practice token and date shift per (practice, patient).',
      columns: {
        [config.tenantColumn]: { phi: 'none' },
        patient_id: { phi: 'direct' },
        person_token: { phi: 'none' },
        practice_token: { phi: 'none' },
        // Direct: published, it would undo the shift. Only the shift macros may consume it.
        date_shift_days: { phi: 'direct' },
        key_fingerprint: { phi: 'none' },
      },
      tags: ['vault'],
      unique_key: [config.tenantColumn, 'patient_id'],
      pseudonymized: false,
      macros: [],
      vars: [],
      checksum: '',
    };
  }
  for (const s of project.sources) {
    const id = `source:${s.source}.${s.name}`;
    sources[id] = {
      name: id,
      kind: 'source',
      path: s.file,
      scope: s.scope,
      materialized: 'table',
      schema: s.schema,
      identifier: s.identifier,
      depends_on: [],
      description: s.description,
      columns: columnsOf(s.columns),
      tags: [],
      unique_key: s.key,
      pseudonymized: false,
      macros: [],
      vars: [],
      checksum: '',
      csv_path: s.csvPath,
      ...(s.capture ? { capture: manifestCapture(s.capture) } : {}),
    };
  }
  for (const s of project.seeds) {
    if (builtins[s.name]) {
      diagnostics.push(diagnostic(Codes.duplicateModel, `'${s.name}' is reserved for the ${builtins[s.name]!.kind === 'tenants' ? 'practices relation' : "vault's token map"}`, s));
      continue;
    }
    seeds[s.name] = {
      name: s.name,
      kind: 'seed',
      path: s.file,
      scope: 'shared',
      materialized: 'table',
      schema: config.schemas.seeds,
      identifier: s.name,
      depends_on: [],
      columns: Object.fromEntries(Object.entries(s.columnTypes).map(([c, t]) => [c, { phi: 'none', data_type: t }])),
      tags: [],
      unique_key: [],
      pseudonymized: false,
      macros: [],
      vars: [],
      checksum: s.checksum,
    };
  }

  const props = new Map(project.properties.map((p) => [p.name, p]));
  const usesByModel = new Map<string, TemplateUses>();
  for (const model of project.models) {
    if (builtins[model.name] || seeds[model.name]) {
      diagnostics.push(diagnostic(Codes.duplicateModel, `model name '${model.name}' is already a seed or reserved`, model));
      continue;
    }
    const ast = parseTemplate(model.sql, model.file, diagnostics);
    if (!ast) continue;
    const uses = extractUses(ast, model.file, macroNames, diagnostics);
    checkFields(ast, model.file);
    const allUses = withMacroUses(uses, macroUses);
    usesByModel.set(model.name, allUses);
    const mc = resolveModelConfig(model, uses, config, project.policies?.securitySchema ?? DEFAULT_SECURITY_SCHEMA, diagnostics);
    checkWithheldResearchModel(project, { name: model.name, ...mc }, { file: model.file, line: uses.configLine ?? 1 }, diagnostics);
    if (uses.thisLine !== undefined && mc.materialized !== 'incremental') {
      // The relation is there only for an incremental model's later runs; elsewhere the first build (or a full refresh) failed with "does not exist".
      const why = mc.materialized === 'ephemeral' ? 'an ephemeral model has none' : `a ${mc.materialized} model's relation does not exist when it is first built or rebuilt`;
      diagnostics.push(diagnostic(Codes.invalidConfig, `${model.name}: {{this}} (the model's own relation) is for incremental models, inside {{#if is_incremental}}; ${why}`, { file: model.file, line: uses.thisLine }));
    }
    const p = props.get(model.name);
    models[model.name] = {
      name: model.name,
      kind: 'model',
      path: model.file,
      scope: mc.scope,
      materialized: mc.materialized,
      schema: mc.schema,
      identifier: model.name,
      depends_on: [
        ...new Set([...allUses.refs.map((r) => r.name), ...allUses.sources.map((s) => `source:${s.source}.${s.table}`)]),
      ],
      description: p?.description,
      columns: columnsOf(p?.columns ?? []),
      tags: mc.tags,
      unique_key: mc.uniqueKey,
      pseudonymized: mc.pseudonymized,
      ...(mc.kCount ? { k_count: mc.kCount } : {}),
      ...(mc.batchIncremental ? { batch_incremental: true } : {}),
      macros: allUses.macros,
      vars: [...new Set(allUses.vars.map((v) => v.name))],
      checksum: sha256(model.sql),
    };
    checkReferences(model.name, model.file, allUses, sources, project, diagnostics);
  }
  Object.assign(nodes, sources, builtins, seeds, models);
  checkSources(project.sources, config, project.policies?.securitySchema ?? DEFAULT_SECURITY_SCHEMA, diagnostics);
  const configAt = (name: string) => ({ file: models[name]!.path, line: usesByModel.get(name)?.configLine ?? 1 });
  checkRelationCollisions(models, [...Object.values(sources), ...Object.values(builtins), ...Object.values(seeds)], configAt, diagnostics);
  const writers = [...Object.values(models), ...Object.values(seeds)];
  checkPartitionNames([...writers, ...Object.values(sources)], writers, (n) => (n.kind === 'model' ? configAt(n.name) : { file: n.path, line: 1 }), diagnostics);
  if (config.privacy && !models[config.privacy.identityModel]) {
    diagnostics.push(diagnostic(Codes.unknownRef, `privacy.identity_model '${config.privacy.identityModel}' is not a model${suggest(config.privacy.identityModel, Object.keys(models))}`, { file: 'tsform.yml' }));
  }

  // References are checked again once every model is known (a ref may point at a later file).
  for (const model of project.models) {
    const node = models[model.name];
    const uses = usesByModel.get(model.name);
    if (!node || !uses) continue;
    for (const r of uses.refs) {
      if (!nodes[r.name]) {
        const names = Object.keys(nodes).filter((n) => !n.startsWith('source:'));
        diagnostics.push(diagnostic(Codes.unknownRef, `unknown ref '${r.name}'${suggest(r.name, names)}`, { file: model.file, line: r.line }));
      }
    }
    const lineOfRead = (dep: string) => uses.refs.find((r) => r.name === dep)?.line ?? uses.sources.find((x) => `source:${x.source}.${x.table}` === dep)?.line;
    checkScopes(node, nodes, diagnostics, lineOfRead);
    checkPracticeListExposure(node, nodes, project.policies?.practiceSchemas ?? [config.schemas.marts], diagnostics, lineOfRead);
    checkWithheldGlobalRead(project, node, nodes, lineOfRead, diagnostics);
  }

  // Singular tests read vars too (their templates are checked in full by compileTests).
  const testUses = project.singularTests.flatMap((t) => {
    const ast = parseTemplate(t.sql, t.file, []);
    return ast ? [extractUses(ast, t.file, macroNames, [])] : [];
  });
  checkVarOverrides(loaded.config.vars, options.vars, [...usesByModel.values(), ...macroUses.values(), ...testUses], diagnostics);
  const renderer = createRenderer(project.macros, approvedGeneralizers(project, diagnostics));
  if (!hasErrors(diagnostics)) renderAll(renderer, project, models, nodes, diagnostics, options.deferred);
  if (!hasErrors(diagnostics)) checkPersonRows(project, nodes, diagnostics);
  const tests = hasErrors(diagnostics) ? {} : compileTests(project, nodes, renderer, macroNames, diagnostics, options.deferred, checkFields);

  const manifest: Manifest = {
    schema_version: MANIFEST_SCHEMA_VERSION,
    project: config.name,
    tenant_column: config.tenantColumn,
    models: rendered(models),
    seeds,
    sources,
    builtins,
    tests,
    tenants: project.tenants.map((t) => t.id),
    research_withheld: project.tenants.filter((t) => !t.research).map((t) => t.id),
  };
  const readLines: Record<string, Record<string, number>> = {};
  for (const [name, uses] of usesByModel) {
    const lines: Record<string, number> = {};
    for (const s of [...uses.sources].reverse()) lines[`source:${s.source}.${s.table}`] = s.line;
    for (const r of [...uses.refs].reverse()) lines[r.name] = r.line;
    readLines[name] = lines;
  }
  return { manifest, diagnostics, dependsOn: Object.fromEntries(Object.values(models).map((m) => [m.name, m.depends_on])), readLines };
}

/** The models whose SQL rendered: a model never reaches the manifest without it. */
function rendered(models: Record<string, ModelDraft>): Record<string, ModelNode> {
  const out: Record<string, ModelNode> = {};
  for (const [name, m] of Object.entries(models)) if (m.compiled_sql !== undefined) out[name] = { ...m, compiled_sql: m.compiled_sql };
  return out;
}

function renderAll(
  renderer: Renderer,
  project: Project,
  models: Record<string, ModelDraft>,
  nodes: Record<string, DraftNode>,
  diagnostics: Diagnostic[],
  deferred?: CompileOptions['deferred'],
): void {
  const sqlOf = new Map(project.models.map((m) => [m.name, m]));
  const seedHeaders = new Map(project.seeds.flatMap((s) => (s.header ? [[s.name, s.header] as const] : [])));
  const ephemeral = new Map<string, string>();
  const inProgress = new Set<string>();

  const scopeFor = (node: DraftNode, filtered: boolean, isIncremental: boolean): RenderScope => ({
    filtered,
    isIncremental,
    self: node,
    lookup: (id) => (deferred?.nodes.has(id) && nodes[id] ? { ...nodes[id], catalog: deferred.catalog } : nodes[id]),
    ephemeralBody: (name, f) => {
      const key = `${name}:${f}`;
      const done = ephemeral.get(key);
      if (done !== undefined) return done;
      if (inProgress.has(key)) throw new Error(`ephemeral models form a cycle through '${name}'`);
      inProgress.add(key);
      const target = nodes[name]!;
      const body = renderer.render(sqlOf.get(name)!.sql, scopeFor(target, f && target.scope === 'tenant', false));
      inProgress.delete(key);
      ephemeral.set(key, body);
      return body;
    },
    tenantColumn: project.config.tenantColumn,
    vars: project.config.vars,
  });

  // Views are one relation over every practice; their filter comes from RLS and from readers.
  const filteredFor = (node: DraftNode) => node.scope === 'tenant' && (node.materialized === 'table' || node.materialized === 'incremental' || node.materialized === 'ephemeral');
  const columnNamesOf = nodeColumnNames(nodes, seedHeaders, (id) => {
    const node = models[id];
    const file = sqlOf.get(id);
    if (!node || !file) return undefined;
    try {
      return renderer.render(file.sql, { ...scopeFor(node, filteredFor(node), false), bare: true });
    } catch {
      return undefined; // reported where the model itself is rendered
    }
  });
  for (const node of Object.values(models)) {
    const file = sqlOf.get(node.name)!;
    const filtered = filteredFor(node);
    try {
      const full = renderer.renderMapped(file.sql, scopeFor(node, filtered, false));
      node.compiled_sql = full.sql;
      node.compiled_lines = full.lines;
      if (node.materialized === 'incremental') {
        const incremental = renderer.renderMapped(file.sql, scopeFor(node, filtered, true));
        node.compiled_incremental_sql = incremental.sql;
        node.compiled_incremental_lines = incremental.lines;
      }
      // Every model's: a pseudonymized model's gate derives what its upstream models really hold from their SQL, not their yml.
      node.lineage_sql = renderer.render(file.sql, { ...scopeFor(node, filtered, false), lineage: true, bare: true });
      // The `is_incremental` branch writes too: what it selects is checked like the full build's.
      if (node.materialized === 'incremental') node.lineage_incremental_sql = renderer.render(file.sql, { ...scopeFor(node, filtered, true), lineage: true, bare: true });
      checkWhatItDoes(node, file, renderer, scopeFor(node, filtered, false), nodes, diagnostics, columnNamesOf);
    } catch (err) {
      const message = (err as Error).message.split('\n')[0] ?? '';
      diagnostics.push(diagnostic(Codes.renderFailed, `${node.name}: rendering failed: ${message}`, { file: file.file, line: renderErrorLine(file.sql, message) }));
    }
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The line of the call a rendering error names (`Missing helper: "x"`, `macro x: …`, a `{{var
 * "x"}}`): Handlebars reports no position for errors raised while rendering.
 */
function renderErrorLine(sql: string, message: string): number {
  const name = /^Missing helper: "([^"]+)"/.exec(message)?.[1] ?? /^macro ([\w-]+):/.exec(message)?.[1] ?? /^var '([^']+)'/.exec(message)?.[1];
  if (name === undefined) return 1;
  const n = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // A call of its own (`{{x …}}`), else one inside another's arguments (`{{a (x …)}}`).
  let at = sql.search(new RegExp(`\\{\\{[#>~\\s]*(${n}\\b|var\\s+["']${n}["'])`));
  if (at < 0) at = sql.search(new RegExp(`\\{\\{[^}]*\\(\\s*${n}\\b`));
  return at < 0 ? 1 : sql.slice(0, at).split('\n').length;
}
