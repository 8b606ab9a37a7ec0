import { manifestNodes, type Manifest, type ManifestNode } from '../artifacts/manifest.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import type { PhiClass } from '../project/types.ts';
import { modelLineAt } from '../compile/line-map.ts';
import { cellComputedColumns } from '../compile/k-count-shape.ts';
import { selectItemOffset } from '../compile/model-sql.ts';
import { columnLineage, type LineageResult } from './phi-lineage.ts';
import { maxPhi, phiRank } from './phi-lineage-info.ts';

type Classes = Record<string, PhiClass>;
/** A model (the one read or one below it) that keeps its rows by an identifying value, and the predicate's path. */
interface KeptBy {
  model: string;
  path: string;
}
/** A column an upstream model declares below what its SQL derives: the class it is read with, and why. */
interface Raised {
  declared: PhiClass;
  path: string;
}

/**
 * Compile-time privacy gate (DESIGN §4): a pseudonymized relation may expose no `direct`
 * column, and no `quasi` column that did not pass through an approved generalization macro.
 *
 * Classes propagate through select lists, so no model's yml is the last word on what it holds:
 * a pseudonymized model's output classes are derived from its SQL (generalized columns become
 * `none`); any other model's are the higher of its yml and its SQL (`ssn as visit_code` declared
 * `none` is read as direct downstream, with a warning at the model). A model the analysis cannot
 * follow keeps its yml; the run's leak scan still checks what reaches research.
 */
export function checkPseudonymizedLineage(manifest: Manifest, order: readonly string[]): Diagnostic[] {
  const nodes = manifestNodes(manifest);
  // Two views of each model's output: `exposed` (a generalized column is no longer identifying)
  // for the exposure gate, and `quasi` (a generalized column is still a quasi-identifier) so that
  // k-anonymity knows every quasi-identifier a published relation holds.
  const exposed = new Map<string, Classes>();
  const quasi = new Map<string, Classes>();
  const raised = new Map<string, Map<string, Raised>>();
  // Model → the model (itself or upstream) whose SQL could not be analysed, and why: its yml stands unverified.
  const unverified = new Map<string, { model: string; why: string }>();
  // Model → its columns computed from an identifying value: not a column as stored to a generalizer downstream.
  const computed = new Map<string, string[]>();
  // Model → its columns that hold no data read from a source or a model (constants, a seed's values).
  const lookupColumns = new Map<string, string[]>();
  // Model → its columns that hold a source's column as stored, to that source column (`source:ehr.encounters.updated_at`).
  const origins = new Map<string, Record<string, string>>();
  // Model → the model (itself or upstream) whose rows an identifying value keeps, and the predicate's path.
  const keptBy = new Map<string, KeptBy>();
  // Model → the model (itself or upstream) whose SQL could not be analysed, so which rows it keeps is unknown.
  const unreadPopulation = new Map<string, { model: string; why: string }>();
  // Model → its output columns derived from the tenant column (a practice id under any name).
  const practiceDerived = new Map<string, Set<string>>();
  const diagnostics: Diagnostic[] = [];

  for (const id of order) {
    const node = nodes[id];
    if (!node || node.kind !== 'model' || node.lineage_sql === undefined) continue;
    const relationsFor = (view: Map<string, Classes>, self?: Classes, practiceAsQuasi = false) => {
      const relations: Record<string, Classes> = {};
      for (const dep of node.depends_on) {
        const up = nodes[dep];
        if (!up) continue;
        const classes = view.get(up.name) ?? declared(up);
        const read = practiceAsQuasi ? withPracticeAsQuasi(classes, [...namingPractices(up, manifest.tenant_column), ...(practiceDerived.get(up.name) ?? [])]) : classes;
        for (const key of relationKeys(up)) relations[key] = read;
      }
      relations[`__tsf_this_${node.name}`] = self ?? view.get(node.name) ?? declared(node);
      return relations;
    };
    const computedFor = (): Record<string, string[]> => {
      const out: Record<string, string[]> = {};
      for (const dep of node.depends_on) {
        const up = nodes[dep];
        const columns = up ? computed.get(up.name) : undefined;
        if (!up || !columns) continue;
        for (const key of relationKeys(up)) out[key] = columns;
      }
      return out;
    };
    // `relation.column` as this model's SQL reads it → the source column it holds as stored.
    const inputOrigins: Record<string, string> = {};
    for (const up of node.depends_on.map((d) => nodes[d])) {
      if (!up) continue;
      const held = up.kind === 'source' ? Object.fromEntries(Object.keys(up.columns).map((c) => [c.toLowerCase(), `${up.name}.${c}`])) : (origins.get(up.name) ?? {});
      for (const [c, origin] of Object.entries(held)) for (const key of relationKeys(up)) inputOrigins[`${key}.${c}`.toLowerCase()] = origin;
    }
    // At the select-list item of the column (or the list's start), mapped to the model's line.
    const lineOf = (column?: string) => modelLineAt(node, selectItemOffset(node.compiled_sql, column)) ?? 1;
    const variants = [node.lineage_sql, node.lineage_incremental_sql].filter((sql): sql is string => sql !== undefined);
    // Lists written into the project (seeds, and models' columns of constants or of a seed's
    // values), not data: a patient id there picks that patient.
    const lookups: Record<string, '*' | string[]> = {};
    for (const up of node.depends_on.map((d) => nodes[d])) {
      const listed = up?.kind === 'seed' ? '*' : up ? lookupColumns.get(up.name) : undefined;
      if (!up || listed === undefined || listed.length === 0) continue;
      for (const key of relationKeys(up)) lookups[key] = listed;
    }
    // The is_incremental rendering reads `{{this}}`: the relation the full rendering builds, so
    // with its classes (at least the yml's), not only the yml's.
    const lineage = (view: Map<string, Classes>, generalizers?: string[], practiceAsQuasi = false) => {
      const read = (sql: string, self?: { classes: Classes; stored: Record<string, string> }) =>
        columnLineage({ sql, relations: relationsFor(view, self?.classes, practiceAsQuasi), computed: computedFor(), lookups, origins: inputOrigins, ...(self ? { selfStored: self.stored } : {}), ...(generalizers ? { generalizers } : {}) });
      const full = read(node.lineage_sql!);
      if (node.lineage_incremental_sql === undefined) return full;
      const stored = full.ok ? Object.fromEntries(Object.entries(full.columns).flatMap(([c, l]) => (l.stored ? [[c.toLowerCase(), l.stored]] : []))) : {};
      return everyVariant([full, read(node.lineage_incremental_sql, { classes: full.ok ? floorByDeclared(node, full).classes : {}, stored })]);
    };
    const result = lineage(exposed);
    const qi = lineage(quasi, []);
    const practice = result.ok ? lineage(exposed, undefined, true) : undefined;
    const fromPractice = result.ok && practice?.ok ? risen(result, practice) : [];
    practiceDerived.set(node.name, new Set(fromPractice.map(([column]) => column)));
    if (result.ok) computed.set(node.name, Object.entries(result.columns).filter(([, c]) => c.computed).map(([name]) => name));
    if (result.ok) lookupColumns.set(node.name, Object.entries(result.columns).filter(([name, c]) => !c.data && name !== '*').map(([name]) => name));
    if (result.ok) {
      const held = Object.entries(result.columns).flatMap(([c, l]) => (l.stored && inputOrigins[l.stored.toLowerCase()] ? [[c.toLowerCase(), inputOrigins[l.stored.toLowerCase()]!]] : []));
      origins.set(node.name, Object.fromEntries(held));
    }
    const ownKept = qi.ok ? qi.identifyingPredicates[0] : undefined;
    const upKept = node.depends_on.map((d) => keptBy.get(nodes[d]?.name ?? '')).find((k) => k !== undefined);
    const kept = ownKept !== undefined ? { model: node.name, path: ownKept.path } : upKept;
    if (kept) keptBy.set(node.name, kept);
    // Which rows a model keeps is known only if its SQL and every model's below could be read.
    const unread = qi.ok ? node.depends_on.map((d) => unreadPopulation.get(nodes[d]?.name ?? '')).find((u) => u !== undefined) : { model: node.name, why: qi.error };
    if (unread) unreadPopulation.set(node.name, unread);

    if (!node.pseudonymized) {
      if (!result.ok) {
        unverified.set(node.name, { model: node.name, why: result.error });
        continue;
      }
      const inherited = node.depends_on.map((d) => unverified.get(nodes[d]?.name ?? '')).find((u) => u !== undefined);
      if (inherited) unverified.set(node.name, inherited);
      const up = floorByDeclared(node, result);
      exposed.set(node.name, up.classes);
      if (qi.ok) quasi.set(node.name, floorByDeclared(node, qi).classes);
      raised.set(node.name, up.raised);
      for (const [column, r] of up.raised) {
        const phi = up.classes[column]!;
        diagnostics.push(
          diagnostic(
            Codes.declaredBelowLineage,
            `${node.name}.${column} is declared ${r.declared} but its SQL derives it as ${phi}: ${r.path}; models that read it take it as ${phi} (declare it phi: ${phi})`,
            { file: node.path, line: lineOf(column) },
            'warning',
          ),
        );
      }
      continue;
    }

    const at = { file: node.path, line: lineOf() };
    if (!result.ok) {
      diagnostics.push(diagnostic(Codes.phiLineage, `${node.name}: cannot prove which columns carry PHI (${result.error}); a pseudonymized model must be analysable`, at));
      continue;
    }
    for (const dep of node.depends_on) {
      const up = nodes[dep];
      const u = up ? unverified.get(up.name) : undefined;
      if (!u) continue;
      const via = u.model === up!.name ? '' : ` (through ${up!.name})`;
      const message = `${node.name} reads ${u.model}${via}, whose yml classes stand unverified: its SQL cannot be analysed (${u.why}); the run's leak scan still checks what is written`;
      diagnostics.push(diagnostic(Codes.lineageTrustsYml, message, at, 'warning'));
    }
    const because = (path: string) => path + raisedUpstream(node, nodes, raised, path);
    for (const path of result.implicitDirect) {
      diagnostics.push(diagnostic(Codes.phiLineage, `${node.name} reads a direct identifier outside its select list (a predicate, join, grouping or order can encode it): ${because(path)}`, at));
    }
    const out: Classes = {};
    for (const [column, c] of Object.entries(result.columns)) {
      out[column] = c.phi;
      const path = because(c.lineage[0] ?? column);
      if (c.phi === 'direct') {
        diagnostics.push(diagnostic(Codes.phiLineage, `${node.name}.${column} exposes a direct identifier: ${path}`, { file: node.path, line: lineOf(column) }));
      } else if (c.phi === 'quasi') {
        diagnostics.push(
          diagnostic(Codes.phiLineage, `${node.name}.${column} exposes a quasi-identifier not passed through an approved generalization macro: ${path}`, { file: node.path, line: lineOf(column) }),
        );
      }
    }
    exposed.set(node.name, out);
    if (node.scope !== 'tenant') {
      for (const [column, path] of fromPractice) {
        diagnostics.push(
          diagnostic(Codes.phiLineage, `${node.name}.${column} holds a practice's id or tenants.yml attributes across practices (${path}), which name a place of care; publish practice_token instead (attributes shared by k practices: a seed, practice-seeds)`, {
            file: node.path,
            line: lineOf(column),
          }),
        );
      }
    }

    if (!qi.ok) continue;
    const qiOut: Classes = {};
    for (const [column, c] of Object.entries(qi.columns)) {
      // A class its yml declares stands too (a shifted month declared quasi is one to k-anonymity).
      qiOut[column] = maxPhi(c.phi, node.columns[column]?.phi ?? 'none');
      if (c.phi === 'quasi' && result.columns[column]?.phi === 'none' && node.columns[column]?.phi !== 'quasi') {
        diagnostics.push(
          diagnostic(Codes.phiLineage, `${node.name}.${column} is a generalized quasi-identifier; declare it phi: quasi in the model's yml so k-anonymity covers it (${c.lineage[0] ?? column})`, at),
        );
      }
    }
    quasi.set(node.name, qiOut);
    const kCount = 'k_count' in node ? node.k_count : undefined;
    if (kCount !== undefined) diagnostics.push(...cellComputedQuasi(node, kCount, variants, qiOut, lineOf));
    // Published (one relation over every practice), aggregate or person-level: a person left out
    // of one relation and not of another is found by comparing them.
    if (kCount !== undefined || node.scope !== 'tenant') {
      if (ownKept) diagnostics.push(quasiPopulation(node, ownKept, at));
      else if (upKept) diagnostics.push(populationBelow(node, upKept, at));
      else if (unread) diagnostics.push(populationUnread(node, unread, at));
    }
  }
  return diagnostics;
}

/**
 * A published aggregate's quasi-identifiers must be its cells' keys: the gate counts persons per
 * key, so a key value is shared by at least k of them. One computed over the cell's rows is one
 * person's value (`max(zip3)`, `min(birth_year || zip3)`) or a list of each member's
 * (`string_agg(zip3 || birth_year, ',')`), which no cell count covers.
 */
function cellComputedQuasi(node: ManifestNode, kCount: string, variants: readonly string[], qiOut: Classes, lineOf: (column?: string) => number): Diagnostic[] {
  const computed = new Set(variants.flatMap((sql) => cellComputedColumns(sql, kCount) ?? []));
  return Object.entries(qiOut)
    .filter(([column, phi]) => computed.has(column.toLowerCase()) && (phi === 'quasi' || node.columns[column]?.phi === 'quasi'))
    .map(([column]) =>
      diagnostic(
        Codes.phiLineage,
        `${node.name}.${column} is a quasi-identifier computed over the rows of each cell (an aggregate), not one of the cells' keys: it can hold one person's value, or a list of every member's, which k persons per cell do not cover; output quasi-identifiers as GROUP BY keys only`,
        { file: node.path, line: lineOf(column) },
      ),
    );
}

/**
 * A published aggregate whose rows are kept by a quasi-identifier (`where sex <> 'U'`, `join … on
 * p.zip3 <> '021'`, even on a key), or by a direct one, leaves out cells the gate never sees: a total over the same
 * keys published elsewhere over every row, minus these cells, gives their small counts back. So
 * its population may be chosen by values of no class only; every value of a quasi-identifier is
 * published as a key (or not read at all), and suppression covers the margins. A person-level
 * relation without one person's quasi values, beside one with them, names that person's row.
 */
function quasiPopulation(node: ManifestNode, kept: { phi: PhiClass; path: string }, at: { file: string; line: number }): Diagnostic {
  const what = kept.phi === 'quasi' ? 'a quasi-identifier' : 'an identifying value';
  return diagnostic(
    Codes.phiLineage,
    `${node.name} keeps its rows by ${what} (${kept.path}) through WHERE, HAVING, a join condition, LIMIT, DISTINCT ON, EXCEPT, INTERSECT or a set-returning call: the cells it leaves out are never checked, so a total published over more rows gives their small counts back (differencing); choose rows by columns of no class, and publish every value of a quasi-identifier as a key${highWaterHint(kept.path)}`,
    at,
  );
}

/**
 * The same population chosen in a model below (a staging or pseudonymized model without one
 * person's rows, by a quasi-identifier or by a direct one such as an SSN), read by a second
 * published relation beside the demo's: it is over fewer persons than another all the same.
 */
function populationBelow(node: ManifestNode, kept: KeptBy, at: { file: string; line: number }): Diagnostic {
  return diagnostic(
    Codes.phiLineage,
    `${node.name} is published over rows that ${kept.model} keeps by an identifying value (${kept.path}) through WHERE, HAVING, a join condition, LIMIT, DISTINCT ON, EXCEPT, INTERSECT or a set-returning call: beside a relation over every person, the persons left out are found by differencing; below a published relation, choose rows by columns of no class only${highWaterHint(kept.path)}`,
    at,
  );
}

/**
 * A model below whose SQL cannot be analysed (DuckDB-only syntax, an unknown FROM item) may keep
 * rows by anything (`… qualify ssn <> …`): no gate at run time sees a person left out, so the
 * published relation fails closed, where a column's class would fall back on its yml and the leak scan.
 */
function populationUnread(node: ManifestNode, unread: { model: string; why: string }, at: { file: string; line: number }): Diagnostic {
  const where = unread.model === node.name ? 'its SQL' : `the SQL of ${unread.model}, below it,`;
  return diagnostic(
    Codes.phiLineage,
    `${node.name} is published over rows that cannot be checked: ${where} cannot be analysed (${unread.why}), so whether it keeps rows by an identifying value is unknown; write it in SQL the analysis reads (PostgreSQL grammar)`,
    at,
  );
}

const IN_INCREMENTAL = ' (in the is_incremental rendering)';

/**
 * What an incremental model's filter must look like to be read as its high-water test
 * (phi-lineage-nodes.ts isHighWater): the common dbt fallback `coalesce(max(…), '1900-01-01')`
 * is refused there, and without this an analyst meets only the general rule.
 */
function highWaterHint(path: string): string {
  if (!path.endsWith(IN_INCREMENTAL)) return '';
  return "; an incremental model's high-water test is exempt only on a source's record timestamp (updated_at, loaded_at …) against the same column of {{this}} as stored, picked by max(), coalesce() or a scalar sub-select, whose fallback is NULL, '' or timestamptz '-infinity' (not an old date: over an empty first build the fallback is the bound)";
}

/**
 * One result for the renderings of a model (full, and `is_incremental` for an incremental one):
 * each column at the highest class any rendering gives it, with that rendering's lineage; any
 * rendering that cannot be analysed makes the whole unanalysable.
 */
function everyVariant(results: LineageResult[]): LineageResult {
  const failed = results.find((r) => !r.ok);
  if (failed || results.length === 1) return failed ?? results[0]!;
  const columns: Extract<LineageResult, { ok: true }>['columns'] = {};
  const implicitDirect = new Set<string>();
  const identifyingPredicates = new Map<string, { phi: PhiClass; path: string }>();
  (results as Extract<LineageResult, { ok: true }>[]).forEach((r, i) => {
    const where = (line: string) => (i === 0 ? line : `${line}${IN_INCREMENTAL}`);
    for (const p of r.implicitDirect) if (!implicitDirect.has(p)) implicitDirect.add(where(p));
    for (const p of r.identifyingPredicates) if (!identifyingPredicates.has(p.path)) identifyingPredicates.set(p.path, { phi: p.phi, path: where(p.path) });
    for (const [name, c] of Object.entries(r.columns)) {
      const before = columns[name];
      if (!before) columns[name] = c;
      else if (phiRank(c.phi) > phiRank(before.phi)) columns[name] = { ...c, lineage: c.lineage.map(where), generalized: c.generalized || before.generalized };
    }
  });
  return { ok: true, columns, implicitDirect: [...implicitDirect], identifyingPredicates: [...identifyingPredicates.values()].sort((a, b) => phiRank(a.phi) - phiRank(b.phi)) };
}

/** The names a model's lineage rendering reads an upstream node by: its CTE name, and `schema.table`. */
function relationKeys(up: ManifestNode): string[] {
  const short = up.kind === 'source' ? `__tsf_src_${up.name.replace(/^source:/, '').replace('.', '__')}` : `__tsf_ref_${up.name}`;
  return [short, `${up.schema}.${up.identifier}`];
}

/**
 * Read across practices, a practice's id names where a person was seen: a place of care, finer
 * than any generalized geography (Safe Harbor keeps no area smaller than a state but ZIP3), and
 * not a token, and so do its name and the rest of tenants.yml (a time zone of one practice). A
 * tenant-scoped slice keeps its id to replace itself; a relation over every practice
 * may join on it (a seed of practice attributes, in classes of k practices: practice-seeds.ts) but
 * publishes no column derived from it, under any name a model below gave it: the practice token
 * stands in. Found by reading each model once more with the tenant column (and what upstream
 * models derived from it) as a quasi-identifier: a column whose class rises is derived from it.
 */
function risen(plain: Extract<LineageResult, { ok: true }>, practice: Extract<LineageResult, { ok: true }>): [string, string][] {
  return Object.entries(practice.columns)
    .filter(([column, c]) => phiRank(c.phi) > phiRank(plain.columns[column]?.phi ?? 'none'))
    .map(([column, c]) => [column, c.lineage[0] ?? column]);
}

/** Columns of `up` that name a practice: the tenant column of a practice's rows, and every column of tenants.yml's relation. */
function namingPractices(up: ManifestNode, tenantColumn: string): string[] {
  if (up.kind === 'tenants') return Object.keys(up.columns);
  return up.scope === 'tenant' ? [tenantColumn] : [];
}

function withPracticeAsQuasi(classes: Classes, columns: readonly string[]): Classes {
  const out = { ...classes };
  for (const column of columns) {
    const key = Object.keys(out).find((c) => c.toLowerCase() === column.toLowerCase()) ?? column;
    out[key] = maxPhi(out[key] ?? 'none', 'quasi');
  }
  return out;
}

function declared(n: ManifestNode): Classes {
  return Object.fromEntries(Object.entries(n.columns).map(([c, v]) => [c, v.phi]));
}

/**
 * A model's classes as its readers take them: each column the higher of its yml and its SQL (a
 * yml cannot lower what the SQL reads; a column the SQL cannot see, such as one a `*` over an
 * unknown relation brings, keeps its yml), and the columns declared lower than derived.
 */
function floorByDeclared(node: ManifestNode, result: Extract<LineageResult, { ok: true }>): { classes: Classes; raised: Map<string, Raised> } {
  const classes = declared(node);
  const byLower = new Map(Object.keys(classes).map((c) => [c.toLowerCase(), c]));
  const raised = new Map<string, Raised>();
  for (const [column, c] of Object.entries(result.columns)) {
    if (column === '*') continue;
    const name = byLower.get(column.toLowerCase()) ?? column;
    const before = classes[name];
    classes[name] = maxPhi(before ?? 'none', c.phi);
    if (before !== undefined && phiRank(c.phi) > phiRank(before)) raised.set(name, { declared: before, path: c.lineage[0] ?? column });
  }
  return { classes, raised };
}

/** `; stg_x.y is declared none, but its SQL derives it: …` for each raised upstream column a path ends at. */
function raisedUpstream(node: ManifestNode, nodes: Record<string, ManifestNode>, raised: Map<string, Map<string, Raised>>, path: string): string {
  const found: string[] = [];
  const lower = path.toLowerCase();
  for (const dep of node.depends_on) {
    const up = nodes[dep];
    const columns = up ? raised.get(up.name) : undefined;
    if (!up || !columns) continue;
    for (const [column, r] of columns) {
      const names = [`__tsf_ref_${up.name}.${column}`, `${up.schema}.${up.identifier}.${column}`].map((n) => `${n.toLowerCase()} (`);
      if (names.some((n) => lower.includes(n))) found.push(`; ${up.name}.${column} is declared ${r.declared} in its yml, but its SQL derives it: ${r.path}`);
    }
  }
  return found.join('');
}
