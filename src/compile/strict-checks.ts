import type { Manifest, ManifestNode } from '../artifacts/manifest.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import type { ColumnSpec, ModelProperties, Project, SourceTable } from '../project/types.ts';
import { emptyUses, extractUses, parseTemplate, type TemplateUses } from './extract.ts';

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
 *   (when the yml lists columns at all) and its compiled SQL selects it (see `selectsColumn`).
 * - TSF219 every relationships test's `field` is a column of its target, when the target's yml
 *   lists columns (models and sources; seeds' `column_types` are not a column list). Generic
 *   tests hang off yml columns, so their own column exists by construction; singular tests name
 *   no column.
 * - TSF220 no unused macro: every macro under macros/ is used by a model, by a singular test, or
 *   by another macro that is itself used.
 */
export function strictChecks(project: Project, manifest: Manifest): Diagnostic[] {
  return [
    ...checkClassified(project),
    ...checkDescribed(project, manifest),
    ...checkTenantColumn(project, manifest),
    ...checkTestColumns(project),
    ...checkUnusedMacros(project, manifest),
  ];
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
    if (node.compiled_sql !== undefined && !selectsColumn(node.compiled_sql, tc)) {
      out.push(
        diagnostic(Codes.strictNoTenantColumn, `tenant-scoped model '${model.name}' does not select the tenant column '${tc}' in its final select list`, {
          file: model.file,
          line: 1,
        }),
      );
    }
  }
  return out;
}

interface Token {
  kind: 'word' | 'quoted' | 'string' | 'number' | 'punct' | 'other';
  /** Words lower-cased; quoted identifiers unquoted, case kept. */
  text: string;
  depth: number;
}

/** SQL keywords that end a select list at its own depth. */
const LIST_END = new Set(['from', 'where', 'group', 'having', 'window', 'qualify', 'order', 'limit', 'offset', 'fetch', 'union', 'intersect', 'except', 'into']);
/** Words that are never an implicit alias (`CASE … END` names no column). */
const NOT_ALIAS = new Set(['end', 'null', 'true', 'false', 'distinct', 'all', 'and', 'or', 'not', 'is', 'in', 'like', 'then', 'else', 'when']);

/**
 * A deliberately simple heuristic, no SQL parser: does the query's result have a column named
 * `column`? It finds the first SELECT at the outermost parenthesis level (CTE bodies and
 * subqueries are nested in parentheses, so this is the main query; in a UNION the first branch
 * names the columns), splits its select list at top-level commas and takes each item's output
 * name: the alias after AS, an implicit alias (`expr name`), or the bare or qualified column
 * (`t.practice_id`). The column is carried when an item is named so, or when an item is `*` or
 * `t.*` (without a DuckDB `EXCLUDE` naming it). Comments, strings and `$1` are skipped.
 * Unquoted names compare case-insensitively. A query with no SELECT at all is given the benefit
 * of the doubt.
 */
export function selectsColumn(sql: string, column: string): boolean {
  const tokens = tokenize(sql);
  const selects = tokens.map((t, i) => ({ t, i })).filter(({ t }) => t.kind === 'word' && t.text === 'select');
  if (selects.length === 0) return true;
  const depth = Math.min(...selects.map(({ t }) => t.depth));
  const start = selects.find(({ t }) => t.depth === depth)!.i;
  const items = selectItems(tokens, start, depth);
  const want = column.toLowerCase();
  const isWanted = (t: Token | undefined) =>
    t !== undefined && ((t.kind === 'word' && t.text === want) || (t.kind === 'quoted' && t.text === column));
  for (const item of items) {
    const starAt = item.findIndex((t) => t.kind === 'punct' && t.text === '*' && t.depth === depth);
    const isStar = starAt >= 0 && (starAt === 0 || item[starAt - 1]?.text === '.') && item.slice(0, starAt).every((t) => t.kind !== 'punct' || t.text === '.');
    if (isStar) {
      const rest = item.slice(starAt + 1);
      const excludes = rest[0]?.kind === 'word' && rest[0].text === 'exclude' && rest.some((t) => isWanted(t));
      if (!excludes) return true;
      continue;
    }
    if (isWanted(outputName(item))) return true;
  }
  return false;
}

function selectItems(tokens: Token[], selectAt: number, depth: number): Token[][] {
  let i = selectAt + 1;
  const at = (k: number) => tokens[k];
  const isWord = (k: number, w: string) => at(k)?.kind === 'word' && at(k)?.text === w && at(k)?.depth === depth;
  if (isWord(i, 'all')) i++;
  else if (isWord(i, 'distinct')) {
    i++;
    if (isWord(i, 'on') && at(i + 1)?.text === '(') {
      i += 2;
      while (i < tokens.length && !(at(i)?.text === ')' && at(i)?.depth === depth)) i++;
      i++;
    }
  }
  const items: Token[][] = [[]];
  for (; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.depth < depth) break;
    if (t.depth === depth) {
      if (t.kind === 'word' && LIST_END.has(t.text)) break;
      if (t.kind === 'punct' && t.text === ';') break;
      if (t.kind === 'punct' && t.text === ',') {
        items.push([]);
        continue;
      }
    }
    items[items.length - 1]!.push(t);
  }
  return items.filter((it) => it.length > 0);
}

/** The token naming an item's output column, if the heuristic can tell. */
function outputName(item: Token[]): Token | undefined {
  const last = item[item.length - 1];
  const prev = item[item.length - 2];
  const isName = (t: Token | undefined) => t !== undefined && (t.kind === 'quoted' || t.kind === 'word');
  if (!isName(last)) return undefined;
  if (item.length === 1) return last;
  if (prev?.kind === 'word' && prev.text === 'as' && prev.depth === last!.depth) return last;
  if (prev?.kind === 'punct' && prev.text === '.') return last;
  const implicitAlias =
    prev !== undefined &&
    prev.depth === last!.depth &&
    (isName(prev) || prev.kind === 'string' || prev.kind === 'number' || (prev.kind === 'punct' && prev.text === ')')) &&
    !(last!.kind === 'word' && NOT_ALIAS.has(last!.text));
  return implicitAlias ? last : undefined;
}

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let depth = 0;
  let i = 0;
  const n = sql.length;
  const push = (kind: Token['kind'], text: string) => tokens.push({ kind, text, depth });
  while (i < n) {
    const ch = sql[i]!;
    const next = sql[i + 1];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (ch === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else if (ch === "'") {
      let j = i + 1;
      while (j < n && !(sql[j] === "'" && sql[j + 1] !== "'")) j += sql[j] === "'" ? 2 : 1;
      push('string', '');
      i = j + 1;
    } else if (ch === '"') {
      let j = i + 1;
      let text = '';
      while (j < n) {
        if (sql[j] === '"') {
          if (sql[j + 1] === '"') {
            text += '"';
            j += 2;
            continue;
          }
          break;
        }
        text += sql[j];
        j++;
      }
      push('quoted', text);
      i = j + 1;
    } else if (ch === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        push('string', '');
        i = end < 0 ? n : end + tag[0].length;
      } else {
        const num = /^\$\d*/.exec(sql.slice(i))![0];
        push('other', num);
        i += num.length;
      }
    } else if (/[A-Za-z_]/.test(ch)) {
      const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i))![0];
      push('word', word.toLowerCase());
      i += word.length;
    } else if (/[0-9]/.test(ch)) {
      const num = /^[0-9][0-9.eE]*/.exec(sql.slice(i))![0];
      push('number', num);
      i += num.length;
    } else if (ch === '(') {
      push('punct', ch);
      depth++;
      i++;
    } else if (ch === ')') {
      depth = Math.max(0, depth - 1);
      push('punct', ch);
      i++;
    } else if (ch === ':' && next === ':') {
      push('punct', '::');
      i += 2;
    } else if (',.*;'.includes(ch)) {
      push('punct', ch);
      i++;
    } else {
      push('other', ch);
      i++;
    }
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// 4. every test refers to an existing column

function checkTestColumns(project: Project): Diagnostic[] {
  const out: Diagnostic[] = [];
  const props = propertiesByModel(project);
  const sources = new Map(project.sources.map((s) => [sourceName(s), s]));
  /** The target's yml column names, or undefined when its yml lists none (nothing to check). */
  const columnsOf = (to: string): string[] | undefined => {
    const p = props.get(to);
    const cols = p?.columns ?? sources.get(to.replace(/^source:/, ''))?.columns;
    return cols && cols.length > 0 ? cols.map((c) => c.name) : undefined;
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
        if (!target || target.includes(t.field)) continue;
        out.push(
          diagnostic(
            Codes.strictUnknownTestColumn,
            `relationships test on '${owner.name}.${col.name}' refers to '${t.to}.${t.field}', but '${t.to}' lists no column '${t.field}' (it lists ${target.map((c) => `'${c}'`).join(', ')})`,
            { file: t.file, line: lineOr1(t.line) },
          ),
        );
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 5. no unused macro

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
