import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import { MATERIALIZATIONS, researchSchemaNames, SCOPES } from '../project/load-config.ts';
import type { Materialization, ModelFile, ProjectConfig, Scope } from '../project/types.ts';
import { suggest } from '../project/suggest.ts';
import { SIMPLE_NAME } from '../sql/quote.ts';
import type { TemplateUses } from './extract.ts';

export interface ModelConfig {
  scope: Scope;
  materialized: Materialization;
  schema: string;
  tags: string[];
  uniqueKey: string[];
  pseudonymized: boolean;
  /** A published aggregate: this column holds class sizes (k-anonymity checks it is NULL or ≥ k). */
  kCount?: string;
  /**
   * The incremental filter is correlated on the tenant column (a per-practice high-water mark),
   * so practices may share a statement like table models do (`batch_incremental=true`).
   */
  batchIncremental: boolean;
}

const KNOWN_KEYS = new Set(['materialized', 'scope', 'schema', 'tags', 'unique_key', 'pseudonymized', 'k_anonymity_count', 'batch_incremental']);
const BOOLEAN_KEYS = new Set(['pseudonymized', 'batch_incremental']);

/** Folder defaults from tsform.yml (longest matching folder wins), then the model's `{{config}}`. */
export function resolveModelConfig(model: ModelFile, uses: TemplateUses, config: ProjectConfig, securitySchema: string, diagnostics: Diagnostic[]): ModelConfig {
  const folder = model.file.replace(/^models\//, '').split('/').slice(0, -1).join('/');
  const matches = config.folders
    .filter((f) => f.path === '' || folder === f.path || folder.startsWith(`${f.path}/`))
    .sort((a, b) => a.path.length - b.path.length);
  const out: ModelConfig = {
    scope: 'tenant',
    materialized: 'table',
    schema: config.schemas.marts,
    tags: [],
    uniqueKey: [],
    pseudonymized: false,
    batchIncremental: false,
  };
  /** Where a setting came from when a folder of tsform.yml decided it (the model's {{config}} overrides). */
  const fromFolder: Partial<Record<'schema' | 'scope' | 'materialized', { file: string; line?: number }>> = {};
  for (const f of matches) {
    if (f.scope) out.scope = f.scope;
    if (f.materialized) out.materialized = f.materialized;
    if (f.schema) out.schema = f.schema;
    if (f.tags) out.tags = [...out.tags, ...f.tags];
    if (f.pseudonymized !== undefined) out.pseudonymized = f.pseudonymized;
    for (const key of ['schema', 'scope', 'materialized'] as const) if (f[key] !== undefined) fromFolder[key] = { file: 'tsform.yml', line: f.lines?.[key] };
  }

  const at = { file: model.file, line: uses.configLine };
  const origin = (key: 'schema' | 'scope' | 'materialized') => (Object.hasOwn(uses.config, key) ? at : (fromFolder[key] ?? at));
  const bad = (message: string) => diagnostics.push(diagnostic(Codes.invalidConfig, `${model.name}: ${message}`, at));
  for (const [key, value] of Object.entries(uses.config)) {
    if (!KNOWN_KEYS.has(key)) {
      bad(`unknown config key '${key}'${suggest(key, [...KNOWN_KEYS])}; known: ${[...KNOWN_KEYS].join(', ')}`);
      continue;
    }
    const text = String(value);
    // `pseudonymized="yes"` and `pseudonymized=1` were read as false; `schema=1` as a name.
    if (BOOLEAN_KEYS.has(key) ? !(typeof value === 'boolean' || text === 'true' || text === 'false') : typeof value !== 'string') {
      bad(BOOLEAN_KEYS.has(key) ? `${key} is true or false, not ${JSON.stringify(value)} (${key}=true)` : `${key} takes quoted text, not ${JSON.stringify(value)} (${key}="…")`);
      continue;
    }
    switch (key) {
      case 'materialized':
        if (MATERIALIZATIONS.includes(text as Materialization)) out.materialized = text as Materialization;
        else bad(`unknown materialization '${text}' (${MATERIALIZATIONS.join(', ')})`);
        break;
      case 'scope':
        if (SCOPES.includes(text as Scope)) out.scope = text as Scope;
        else bad(`unknown scope '${text}' (${SCOPES.join(', ')})`);
        break;
      case 'schema':
        if (SIMPLE_NAME.test(text)) out.schema = text;
        else bad(`schema '${text}' is not a simple identifier`);
        break;
      case 'tags':
        out.tags = [...out.tags, ...splitList(text)];
        break;
      case 'unique_key':
        out.uniqueKey = splitList(text);
        if (out.uniqueKey.some((k) => !SIMPLE_NAME.test(k))) bad(`unique_key '${text}' must name simple columns`);
        break;
      case 'pseudonymized': {
        const on = value === true || text === 'true';
        // A declaration may only make a check stricter: a research folder's default stays on.
        if (!on && out.pseudonymized) bad('pseudonymized cannot be switched off in a folder whose models are pseudonymized (tsform.yml models:)');
        else out.pseudonymized = on;
        break;
      }
      case 'batch_incremental':
        out.batchIncremental = value === true || text === 'true';
        break;
      case 'k_anonymity_count':
        if (SIMPLE_NAME.test(text)) out.kCount = text;
        else bad(`k_anonymity_count '${text}' must name a column`);
        break;
    }
  }
  if (out.materialized === 'incremental' && out.uniqueKey.length === 0) {
    bad("an incremental model needs unique_key (the merge key), e.g. {{config materialized=\"incremental\" unique_key=\"id\"}}");
  }
  const researchSchemas = researchSchemaNames(config);
  // A relation in a research schema is published to researchers: the lineage gate always applies.
  if (researchSchemas.has(out.schema) && !out.pseudonymized) {
    if (uses.config.pseudonymized !== undefined) bad(`schema '${out.schema}' holds research relations: a model there must be pseudonymized (it cannot be switched off)`);
    out.pseudonymized = true;
  }
  // Tokens anywhere else would sit in a schema practice roles may read (marts, staging), where a
  // global relation has no row-level security and nothing passes the publication gate.
  if (out.pseudonymized && !researchSchemas.has(out.schema)) {
    bad(`a pseudonymized model belongs in a research schema (${[...researchSchemas].join(', ')}), not '${out.schema}'${uses.config.pseudonymized === undefined ? ': its folder in tsform.yml (models:) is pseudonymized but has no schema of its own' : ''}`);
  }
  // Published research is gated when it is built (suppression, k-anonymity, leak scan): a view
  // would publish its rows ungated at every read, a tenant-scoped table per practice.
  if (out.schema === config.schemas.research && (out.materialized === 'view' || out.scope === 'tenant')) {
    // At what made it so: the model's {{config}}, or the tsform.yml folder setting it inherited.
    const cause = out.scope === 'tenant' ? origin('scope') : origin('materialized');
    diagnostics.push(
      diagnostic(
        Codes.invalidConfig,
        `${model.name}: schema '${out.schema}' is published research: a model there is a global or shared table or incremental (built once, through the publication gate), not a ${out.scope === 'tenant' ? 'tenant-scoped model' : 'view'}${cause.file === model.file ? '' : ` (${out.scope === 'tenant' ? 'scope' : 'materialized'} comes from ${cause.file}${cause.line ? `:${cause.line}` : ''})`}`,
        cause.line === undefined && cause.file !== model.file ? at : cause,
      ),
    );
  }
  // Only the publication gate reads it (small-cell suppression): anywhere else it would promise a
  // suppression that never happens.
  if (out.kCount !== undefined && out.schema !== config.schemas.research) {
    bad(`k_anonymity_count is for published aggregates (schema '${config.schemas.research}', where the publication gate suppresses small cells); in schema '${out.schema}' nothing reads it`);
  }
  // DuckDB matches identifiers without regard to case, quoted or not, and PostgreSQL matches
  // quoted ones exactly: `schema="RESEARCH"` would be the research schema on one and an ungated
  // schema of its own on the other, so each check above would hold on one engine only.
  const known = [...Object.values(config.schemas), ...config.folders.flatMap((f) => (f.schema ? [f.schema] : []))];
  const twin = known.find((k) => k !== out.schema && k.toLowerCase() === out.schema.toLowerCase());
  if (twin !== undefined) bad(`schema '${out.schema}' differs from the project's schema '${twin}' only in case (one schema on DuckDB, two on PostgreSQL); write '${twin}'`);
  const own = ownSchema(out.schema, config, securitySchema);
  if (own) bad(`schema '${out.schema}' is ${own}; a model cannot write there`);
  out.tags = [...new Set(out.tags)];
  return out;
}

/**
 * What a schema is when no model may write to it, compared without regard to case (one schema on
 * DuckDB): tsform's own, where a model named like the row-level security membership table would
 * merge rows into it and give a role another practice, and the engines' catalogs.
 */
/** What of tsform's or the engine's a schema is (a model may not write there, a source may not read there), or undefined. */
export function ownSchema(schema: string, config: ProjectConfig, securitySchema: string): string | undefined {
  const s = schema.toLowerCase();
  if (s === config.schemas.vault.toLowerCase()) return "tsform's vault";
  if (s === config.schemas.meta.toLowerCase()) return "tsform's metadata schema";
  if (s === securitySchema.toLowerCase()) return "tsform's row-level security schema (policies.yml security_schema)";
  if (s === 'information_schema' || s.startsWith('pg_')) return "the engine's catalog";
  return undefined;
}

function splitList(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter(Boolean);
}
