import { Codes } from '../errors.ts';
import { SIMPLE_NAME } from '../sql/quote.ts';
import { readSourceLoader } from './read-source-loader.ts';
import type { ColumnSpec, GenericTestKind, GenericTestSpec, ModelProperties, PhiClass, Seed, SourceTable } from './types.ts';
import { suggest } from './suggest.ts';
import { plainTypeName } from './type-names.ts';
import { isRecord, YamlReader } from './yaml-file.ts';
import { checkKeys, PROPERTIES_SCHEMA } from './yml-schema.ts';
import { escapesProject } from './project-path.ts';

const PHI: readonly PhiClass[] = ['direct', 'quasi', 'none'];
const TEST_KINDS: readonly GenericTestKind[] = ['not_null', 'unique', 'accepted_values', 'relationships'];

export interface PropertiesFile {
  models: ModelProperties[];
  sources: SourceTable[];
  seedTypes: SeedTypes[];
}

/** A seed's `column_types`, with the line of each column so a name not in the CSV can be shown. */
export interface SeedTypes extends Pick<Seed, 'name' | 'columnTypes' | 'file' | 'line'> {
  columnLines: Record<string, number | undefined>;
}

/** One `models/**\/*.yml` file: model properties, sources, seed column types. */
export function readProperties(r: YamlReader, defaultSchema: string): PropertiesFile {
  const out: PropertiesFile = { models: [], sources: [], seedTypes: [] };
  const root = r.y.value;
  if (root === null || root === undefined) return out;
  if (!isRecord(root)) {
    r.fail(undefined, undefined, 'a properties file must be a mapping with models:, sources: or seeds:');
    return out;
  }
  checkKeys(r, root, PROPERTIES_SCHEMA, 'properties file');
  for (const m of r.list(root, 'models')) {
    if (!isRecord(m)) {
      r.fail(root, 'models', 'each entry under models: must be a mapping');
      continue;
    }
    const name = r.string(m, 'name', { required: true });
    if (!name) continue;
    out.models.push({ name, description: r.string(m, 'description'), columns: readColumns(r, m, name), file: r.y.file, line: r.y.lineOf(m) });
  }
  for (const s of r.list(root, 'sources')) {
    if (!isRecord(s)) {
      r.fail(root, 'sources', 'each entry under sources: must be a mapping');
      continue;
    }
    out.sources.push(...readSource(r, s, defaultSchema));
  }
  for (const s of r.list(root, 'seeds')) {
    if (!isRecord(s)) continue;
    const name = r.string(s, 'name', { required: true });
    if (!name) continue;
    const types: Record<string, string> = {};
    const columnLines: Record<string, number | undefined> = {};
    const ct = r.record(s, 'column_types') ?? {};
    for (const col of Object.keys(ct)) {
      const t = r.string(ct, col);
      if (t) types[col] = t;
      columnLines[col] = r.y.lineOfKey(ct, col);
      if (t) checkTypeName(r, ct, col, t, `seed '${name}': column_types '${col}'`);
    }
    out.seedTypes.push({ name, columnTypes: types, columnLines, file: r.y.file, line: r.y.lineOf(s) });
  }
  return out;
}

function readSource(r: YamlReader, s: Record<string, unknown>, defaultSchema: string): SourceTable[] {
  const source = r.string(s, 'name', { required: true });
  if (!source) return [];
  const schema = r.string(s, 'schema') ?? defaultSchema;
  if (!SIMPLE_NAME.test(schema)) r.fail(s, 'schema', `schema '${schema}' is not a simple identifier`, Codes.invalidIdentifier);
  const scope = r.string(s, 'scope') ?? 'tenant';
  if (scope !== 'tenant' && scope !== 'shared') r.fail(s, 'scope', `a source's scope is tenant or shared, not '${scope}'`, Codes.invalidConfig);
  const loader = readSourceLoader(r, s, source, scope);
  const tables: SourceTable[] = [];
  for (const t of r.list(s, 'tables')) {
    if (!isRecord(t)) {
      r.fail(s, 'tables', 'each table must be a mapping with a name');
      continue;
    }
    const name = r.string(t, 'name', { required: true });
    if (!name) continue;
    const identifier = r.string(t, 'identifier') ?? name;
    if (!SIMPLE_NAME.test(identifier)) r.fail(t, 'name', `table '${identifier}' is not a simple identifier`, Codes.invalidIdentifier);
    if (loader.csvPattern !== undefined && escapesProject(loader.csvPattern)) {
      r.fail(t, 'name', `source ${source}.${name}: loader csv: '${loader.csvPattern}' leads outside the project (absolute or '..'); a source's CSV files are the project's`, Codes.invalidConfig);
    }
    const key = r.stringList(t, 'key');
    for (const k of key) if (!SIMPLE_NAME.test(k)) r.fail(t, 'key', `table '${identifier}': key column '${k}' is not a simple identifier`, Codes.invalidIdentifier);
    tables.push({
      source,
      name,
      identifier,
      schema,
      scope: scope === 'shared' ? 'shared' : 'tenant',
      description: r.string(t, 'description'),
      columns: readColumns(r, t, `${source}.${name}`, true),
      csvPath: loader.csvPattern?.replaceAll('{table}', identifier),
      key,
      capture: loader.forTable(t, identifier),
      file: r.y.file,
      line: r.y.lineOf(t),
    });
  }
  return tables;
}

/**
 * A seed's or a source's column type becomes SQL at run time (the cast of a loaded CSV, a
 * landing table's column): an unknown name is an error at its yml line, not the engine's at run
 * time. A model's `data_type` only documents, and is not checked.
 */
function checkTypeName(r: YamlReader, obj: Record<string, unknown>, key: string, type: string, what: string): void {
  const plain = plainTypeName(type);
  if ('problem' in plain) r.fail(obj, key, `${what}: ${plain.problem}`, Codes.invalidConfig);
}

function readColumns(r: YamlReader, owner: Record<string, unknown>, ownerName: string, typed = false): ColumnSpec[] {
  const cols: ColumnSpec[] = [];
  const seen = new Map<string, number | undefined>();
  for (const c of r.list(owner, 'columns')) {
    if (!isRecord(c)) {
      r.fail(owner, 'columns', `${ownerName}: each column must be a mapping with a name`);
      continue;
    }
    const name = r.string(c, 'name', { required: true });
    if (!name) continue;
    // A second entry's class and tests would silently stand beside (or instead of) the first's.
    if (seen.has(name.toLowerCase())) {
      r.fail(c, 'name', `${ownerName}: column '${name}' is listed twice (first at line ${seen.get(name.toLowerCase()) ?? '?'}); keep one entry with its class and tests`);
      continue;
    }
    seen.set(name.toLowerCase(), r.y.lineOf(c));
    const phiRaw = r.string(c, 'phi') ?? 'none';
    if (!PHI.includes(phiRaw as PhiClass)) r.fail(c, 'phi', `${ownerName}.${name}: phi must be one of ${PHI.join(', ')}`);
    const line = r.y.lineOf(c);
    const dataType = r.string(c, 'data_type');
    if (typed && dataType !== undefined) checkTypeName(r, c, 'data_type', dataType, `${ownerName}.${name}: data_type`);
    cols.push({
      name,
      description: r.string(c, 'description'),
      phi: PHI.includes(phiRaw as PhiClass) ? (phiRaw as PhiClass) : 'none',
      phiExplicit: c.phi !== undefined && c.phi !== null,
      dataType,
      tests: readTests(r, c, name),
      file: r.y.file,
      line,
    });
  }
  return cols;
}

function readTests(r: YamlReader, c: Record<string, unknown>, column: string): GenericTestSpec[] {
  const tests: GenericTestSpec[] = [];
  const file = r.y.file;
  for (const t of r.list(c, 'tests')) {
    const line = r.y.lineOfKey(c, 'tests');
    if (typeof t === 'string') {
      if (t === 'not_null' || t === 'unique') tests.push({ kind: t, column, file, line });
      else r.fail(c, 'tests', `unknown test '${t}' on column '${column}'${suggest(t, TEST_KINDS) || ` (${TEST_KINDS.join(', ')})`}`);
      continue;
    }
    if (!isRecord(t) || Object.keys(t).length !== 1) {
      r.fail(c, 'tests', `column '${column}': a test is a name or a one-key mapping`);
      continue;
    }
    const [kind, argsRaw] = Object.entries(t)[0]!;
    const args = isRecord(argsRaw) ? argsRaw : {};
    const tl = r.y.lineOf(t) ?? line;
    if (kind === 'accepted_values') {
      const values = args.values;
      if (!Array.isArray(values) || values.length === 0 || values.some((v) => !['string', 'number', 'boolean'].includes(typeof v))) {
        r.fail(t, kind, `column '${column}': accepted_values needs a non-empty 'values' list of scalars`);
        continue;
      }
      tests.push({ kind, column, values: values as (string | number | boolean)[], file, line: tl });
    } else if (kind === 'relationships') {
      const to = typeof args.to === 'string' ? args.to : undefined;
      const field = typeof args.field === 'string' ? args.field : undefined;
      if (!to || !field) {
        r.fail(t, kind, `column '${column}': relationships needs 'to' (a model) and 'field'`);
        continue;
      }
      tests.push({ kind, column, to, field, file, line: tl });
    } else if (kind === 'not_null' || kind === 'unique') {
      tests.push({ kind, column, file, line: tl });
    } else {
      r.fail(t, kind, `unknown test '${kind}' on column '${column}'${suggest(kind, TEST_KINDS) || ` (${TEST_KINDS.join(', ')})`}`);
    }
  }
  return tests;
}
