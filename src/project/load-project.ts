import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import { Codes, diagnostic, type Code, type Diagnostic } from '../errors.ts';
import { SIMPLE_NAME } from '../sql/quote.ts';
import { checkSearchPathsAgainst, CONFIG_FILE, readConfig, researchSchemaNames } from './load-config.ts';
import { POLICIES_FILE, readPolicies } from './load-policies.ts';
import { ProjectFiles } from './project-files.ts';
import { readProperties, type SeedTypes } from './load-properties.ts';
import { readTenants, TENANTS_FILE } from './load-tenants.ts';
import { readSeedCsv } from './seed-csv.ts';
import { suggest } from './suggest.ts';
import type { Macro, ModelFile, PolicyTemplate, Project, ProjectConfig, Seed, SingularTest, Tenant } from './types.ts';
import { parseYamlFile, YamlReader, type YamlFile } from './yaml-file.ts';

/**
 * Reads a project directory into plain data. Never throws for user mistakes: every problem is a
 * diagnostic in `project.diagnostics`, so that all of them can be reported together.
 */
export function loadProject(projectDir: string): Project {
  const root = resolve(projectDir);
  const diagnostics: Diagnostic[] = [];
  const rel = (p: string) => relative(root, p).split(sep).join('/');

  const readYaml = (path: string): YamlFile | undefined =>
    parseYamlFile(readFileSync(path, 'utf8'), rel(path), diagnostics);

  const files = new ProjectFiles(root, diagnostics);
  const configPath = files.present(CONFIG_FILE);
  if (!configPath && !existsSync(join(root, CONFIG_FILE))) {
    diagnostics.push(diagnostic(Codes.missingFile, `no ${CONFIG_FILE} in ${root}: is --project-dir right?`, { file: CONFIG_FILE }));
  }
  const config = readConfig(configPath ? readYaml(configPath) : undefined, diagnostics);

  const tenantsPath = files.present(TENANTS_FILE);
  const tenants = tenantsPath ? readTenants(readYaml(tenantsPath), Object.keys(config.pools), diagnostics) : [];
  if (tenantsPath) checkPartitionedPractices(config, tenants, diagnostics);

  const models: ModelFile[] = [];
  const firstSeen = new Map<string, string>();
  const checkName = (kind: string, name: string, file: string): boolean => {
    if (!SIMPLE_NAME.test(name)) {
      const why = /^[0-9]/.test(name) ? 'must not start with a digit' : 'must be a simple identifier (letters, digits, _)';
      diagnostics.push(diagnostic(Codes.invalidIdentifier, `${kind} name '${name}' ${why}`, { file, line: 1 }));
      return false;
    }
    // tsform names its relations `__tsf_this_<name>` (11 bytes more) in SQL the checks read with
    // PostgreSQL's grammar, which keeps 63 bytes of a name (model-names.ts).
    if (Buffer.byteLength(name) > 52) {
      diagnostics.push(diagnostic(Codes.invalidIdentifier, `${kind} name '${name.slice(0, 24)}…' is longer than 52 bytes: PostgreSQL keeps 63 bytes of a name, and tsform's own names for it are 11 bytes longer`, { file, line: 1 }));
      return false;
    }
    // the names of relations in the renderings compile analyses (render.ts), never a model's
    if (name.toLowerCase().startsWith('__tsf_')) {
      diagnostics.push(diagnostic(Codes.duplicateModel, `${kind} name '${name}': the prefix __tsf_ is reserved for tsform`, { file, line: 1 }));
      return false;
    }
    const prior = firstSeen.get(name);
    if (prior) {
      diagnostics.push(diagnostic(Codes.duplicateModel, `duplicate name '${name}': also defined in ${prior}`, { file, line: 1 }));
      return false;
    }
    firstSeen.set(name, file);
    return true;
  };

  // Names of files present though refused (a duplicate, a bad name): their yml entries are not orphans.
  const filesSeen = { model: new Set<string>(), seed: new Set<string>() };
  const seedTypes: SeedTypes[] = [];
  const project: Project = { root, config, tenants, models, properties: [], sources: [], macros: [], seeds: [], singularTests: [], diagnostics };

  // Listed once: each listing reports the links it refuses (TSF122).
  const modelPaths = files.list('models');
  for (const path of modelPaths) {
    const ext = extname(path);
    if (ext === '.sql') {
      const name = basename(path, '.sql');
      const file = rel(path);
      filesSeen.model.add(name);
      const sql = readText(path, file, diagnostics);
      // Lines end at LF (CRLF too): with CR alone the file was one line, and a `--` comment hid the rest at run time.
      if (/\r(?!\n)/.test(sql)) diagnostics.push(diagnostic(Codes.templateSyntax, 'ends its lines with CR alone; save it with LF (or CRLF) line endings', { file, line: 1 }));
      else if (checkName('model', name, file)) models.push({ name, sql, file, line: 1 });
    } else if (ext.toLowerCase() === '.sql') {
      diagnostics.push(diagnostic(Codes.invalidIdentifier, `is not read: a model file's name ends in .sql, in lower case`, { file: rel(path), line: 1 }));
    } else if (ext === '.yml' || ext === '.yaml') {
      const y = readYaml(path);
      if (!y) continue;
      const props = readProperties(new YamlReader(y, diagnostics), config.schemas.raw);
      project.properties.push(...props.models);
      project.sources.push(...props.sources);
      seedTypes.push(...props.seedTypes);
    }
  }

  for (const path of files.list('macros')) {
    if (extname(path) !== '.hbs') continue;
    const name = basename(path, '.hbs');
    const file = rel(path);
    if (!SIMPLE_NAME.test(name)) {
      diagnostics.push(diagnostic(Codes.invalidIdentifier, `macro name '${name}' must be a simple identifier`, { file, line: 1 }));
      continue;
    }
    if (RESERVED_MACRO_NAMES.has(name)) {
      diagnostics.push(diagnostic(Codes.duplicateModel, `macro name '${name}' is reserved (a built-in helper or template field): rename ${file}`, { file, line: 1 }));
      continue;
    }
    project.macros.push({ name, body: readText(path, file, diagnostics), file, line: 1 } satisfies Macro);
  }

  for (const path of files.list('seeds')) {
    if (extname(path) !== '.csv') continue;
    const name = basename(path, '.csv');
    const file = rel(path);
    filesSeen.seed.add(name);
    if (!checkName('seed', name, file)) continue;
    const text = readText(path, file, diagnostics, Codes.raggedCsv);
    const { problems, parsed } = readSeedCsv(text, file);
    diagnostics.push(...problems);
    project.seeds.push({ name, columnTypes: {}, checksum: createHash('sha256').update(text).digest('hex'), ...(parsed ? { header: parsed.header, rows: parsed.rows } : {}), file, line: 1 } satisfies Seed);
  }
  for (const st of firstEntries(seedTypes, 'seed', diagnostics)) {
    const seed = project.seeds.find((s) => s.name === st.name);
    if (seed) {
      seed.columnTypes = st.columnTypes;
      // A type for a column the CSV does not have would be dropped at load without a word.
      for (const col of Object.keys(st.columnTypes)) {
        if (seed.header && !seed.header.includes(col)) {
          diagnostics.push(diagnostic(Codes.unknownKey, `seed '${st.name}': column_types names '${col}', which is not a column of ${seed.file}${suggest(col, seed.header)}`, { file: st.file, line: st.columnLines[col] ?? st.line }));
        }
      }
    } else if (!filesSeen.seed.has(st.name)) diagnostics.push(diagnostic(Codes.unknownPropertyModel, `properties for seed '${st.name}', but there is no seeds/${st.name}.csv`, st));
  }

  checkFolderKeys(config, modelPaths.filter((p) => extname(p).toLowerCase() === '.sql').map(rel), diagnostics);

  const policiesPath = files.present(POLICIES_FILE);
  if (policiesPath) {
    const templates: Record<string, PolicyTemplate> = {};
    for (const path of files.list('policies')) {
      if (extname(path) !== '.hbs') continue;
      const name = basename(path, '.hbs');
      const first = templates[name];
      // Two files of one name: whichever sorted last would silently have been the override.
      if (first) diagnostics.push(diagnostic(Codes.policyTemplate, `${rel(path)} and ${first.file} both override template '${name}'; keep one`, { file: rel(path), line: 1 }));
      else templates[name] = { text: readFileSync(path, 'utf8'), file: rel(path) };
    }
    const y = readYaml(policiesPath);
    if (y) project.policies = readPolicies(new YamlReader(y, diagnostics), config.schemas, researchSchemaNames(config), templates);
    if (project.policies) checkSearchPathsAgainst(config, diagnostics, CONFIG_FILE, [project.policies.securitySchema], 'the row-level security schema of policies.yml');
  }

  for (const path of files.list('tests')) {
    if (extname(path) !== '.sql') continue;
    const name = basename(path, '.sql');
    project.singularTests.push({ name, sql: readText(path, rel(path), diagnostics), file: rel(path), line: 1 } satisfies SingularTest);
  }

  project.properties = firstEntries(project.properties, 'model', diagnostics);
  for (const p of project.properties) {
    if (!filesSeen.model.has(p.name)) {
      diagnostics.push(diagnostic(Codes.unknownPropertyModel, `properties for model '${p.name}', but there is no models/**/${p.name}.sql`, p));
    }
  }
  const sourceKeys = new Map<string, string>();
  for (const s of project.sources) {
    const key = `${s.source}.${s.name}`;
    const first = sourceKeys.get(key);
    if (first) diagnostics.push(diagnostic(Codes.duplicateSource, `source '${key}' is declared twice (first at ${first})`, s));
    else sourceKeys.set(key, at(s));
  }
  return project;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A project file as UTF-8 text. Bytes that are not UTF-8 (a file saved as Latin-1) became U+FFFD
 * in silence, so `where x = 'café'` compiled to a literal that matches nothing (red-team,
 * 2026-12-07): an error at the first line that holds them.
 */
function readText(path: string, file: string, diagnostics: Diagnostic[], code: Code = Codes.templateSyntax): string {
  const bytes = readFileSync(path);
  try {
    return UTF8.decode(bytes);
  } catch {
    const text = bytes.toString('utf8');
    const line = text.slice(0, text.indexOf('\uFFFD')).split('\n').length;
    diagnostics.push(diagnostic(code, 'is not UTF-8 text (saved in another encoding, such as Latin-1): save it as UTF-8', { file, line }));
    return text;
  }
}

const at = (e: { file: string; line?: number }): string => `${e.file}:${e.line ?? 1}`;

/**
 * A model or seed described by two yml entries is an error at the second (TSF104, naming the
 * first): each reader took one of them (compile the last, the strict checks the first, the class
 * gate all), so the manifest could lose the first entry's PHI classes without a word. The first
 * entry is kept, so that what follows reads one description.
 */
function firstEntries<T extends { name: string; file: string; line?: number }>(entries: readonly T[], kind: 'model' | 'seed', diagnostics: Diagnostic[]): T[] {
  const first = new Map<string, T>();
  for (const e of entries) {
    const prior = first.get(e.name);
    if (prior) diagnostics.push(diagnostic(Codes.duplicateModel, `${kind} '${e.name}' is described twice in yml (first at ${at(prior)}); keep one entry`, { file: e.file, line: e.line }));
    else first.set(e.name, e);
  }
  return [...first.values()];
}

/**
 * Macros are registered as helpers beside the built-in ones, and the last registration wins: a
 * `macros/ref.hbs` replaced `{{ref}}` (what a model reads), `lookup.hbs` the refusal of `lookup`,
 * `if.hbs` or `each.hbs` the control flow every check renders through. Handlebars' own helpers,
 * tsform's and the model context's fields are not macro names.
 */
const RESERVED_MACRO_NAMES = new Set([
  ...['if', 'unless', 'each', 'with', 'lookup', 'log', 'helperMissing', 'blockHelperMissing'],
  ...['ref', 'source', 'config', 'var', 'this', 'is_incremental', 'args'],
]);

/**
 * A folder under tsform.yml `models:` that holds no model (`mart:` for `marts:`) is an error at
 * its key: its defaults (schema, scope, `pseudonymized`) would apply to nothing, and the models
 * meant would take the project's defaults without a word, as an unknown yml key would drop what
 * is under it (TSF117).
 */
function checkFolderKeys(config: ProjectConfig, modelFiles: readonly string[], diagnostics: Diagnostic[]): void {
  const withModels = new Set<string>();
  for (const file of modelFiles) {
    const parts = file.split('/').slice(1, -1);
    for (let i = 1; i <= parts.length; i++) withModels.add(parts.slice(0, i).join('/'));
  }
  for (const f of config.folders) {
    if (f.path === '' || withModels.has(f.path)) continue;
    const hint = suggest(f.path, [...withModels]) || (withModels.size > 0 ? ` (folders with models: ${[...withModels].sort().slice(0, 8).join(', ')})` : '');
    diagnostics.push(diagnostic(Codes.unknownKey, `models: folder '${f.path}' holds no model under models/${hint}; its defaults would apply to nothing`, { file: CONFIG_FILE, line: f.line }));
  }
}

/** A practice named in a target's partition_by_practice.list that tenants.yml lacks is a typo: its partition would stay empty. */
function checkPartitionedPractices(config: ProjectConfig, tenants: readonly Tenant[], diagnostics: Diagnostic[]): void {
  const ids = new Set(tenants.map((t) => t.id));
  for (const target of Object.values(config.targets)) {
    if (target.type !== 'postgres' || !target.partitionByPractice) continue;
    const unknown = target.partitionByPractice.list.filter((id) => !ids.has(id));
    if (unknown.length === 0) continue;
    const shown = unknown.slice(0, 5).map((id) => `'${id}'`).join(', ');
    diagnostics.push(
      diagnostic(Codes.yamlShape, `target '${target.name}': partition_by_practice.list names ${unknown.length} practice(s) not in ${TENANTS_FILE}: ${shown}${suggest(unknown[0]!, [...ids])}`, {
        file: CONFIG_FILE,
        line: target.partitionByPractice.line,
      }),
    );
  }
}
