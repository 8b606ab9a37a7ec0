import { createHash } from 'node:crypto';
import type { DraftNode } from './draft-node.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import type { ApprovedGeneralizer, Project } from '../project/types.ts';
import { macroParams } from './extract.ts';
import { lineColumnAt, lineOfWord } from './line-map.ts';
import { countedPersonsProblem, measuredTokensProblem, type Relation, type RelationLookup } from './counted-persons.ts';
import { measuredPartProblem } from './measure-derivation.ts';
import { kCountShapeProblem } from './k-count-shape.ts';
import { patientRowsProblem } from './patient-rows.ts';
import { personLevelProblem, personRowsProblem, seedsReadByPracticeId } from './person-rows.ts';
import { smallPracticeClasses, unreadablePracticeSeed } from './practice-seeds.ts';
import { checkModelSql } from './model-sql.ts';
import { tenantIsolationFindings } from './tenant-isolation.ts';
import { unquote } from './relation-columns.ts';
import { cteName } from './relations.ts';
import { reservedRelationName, type Renderer, type RenderScope } from './render.ts';

/** Compile's fail-closed checks of what models and macros do (issue 12), beside compile.ts. */

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * The generalizers of tsform.yml whose macro is unchanged since review (sha256 of the file). A
 * changed or missing macro is an error, and so is a macro claiming `generalizes:` in its header
 * without being on the list: approval lives in one reviewed place.
 */
export function approvedGeneralizers(project: Project, diagnostics: Diagnostic[]): Record<string, ApprovedGeneralizer> {
  const listed = project.config.privacy?.generalizers ?? {};
  const out: Record<string, ApprovedGeneralizer> = {};
  const byName = new Map(project.macros.map((m) => [m.name, m]));
  for (const [name, approval] of Object.entries(listed)) {
    const macro = byName.get(name);
    if (!macro) {
      diagnostics.push(diagnostic(Codes.unapprovedGeneralizer, `privacy.generalizers lists '${name}', which is not a macro (macros/${name}.hbs)`, { file: 'tsform.yml' }));
      continue;
    }
    const hash = sha256(macro.body);
    if (hash !== approval.sha256) {
      diagnostics.push(
        diagnostic(Codes.unapprovedGeneralizer, `macro ${name} changed since it was approved as a generalizer (sha256 now ${hash}); review it, then update privacy.generalizers.${name} in tsform.yml`, { file: macro.file, line: 1 }),
      );
      continue;
    }
    if (approval.shift !== undefined && !macroParams(macro.body).includes(approval.shift)) {
      diagnostics.push(diagnostic(Codes.unapprovedGeneralizer, `privacy.generalizers.${name}.shift names '${approval.shift}', which is not a parameter of the macro`, { file: 'tsform.yml' }));
      continue;
    }
    out[name] = approval;
  }
  if (project.config.privacy) {
    for (const macro of project.macros) {
      if (!Object.hasOwn(listed, macro.name) && /\{\{!--\s*generalizes:/.test(macro.body)) {
        diagnostics.push(
          diagnostic(
            Codes.unapprovedGeneralizer,
            `macro ${macro.name} says it generalizes but is not approved: after review, add '${macro.name}: ${sha256(macro.body)}' under privacy.generalizers in tsform.yml`,
            { file: macro.file, line: 1 },
          ),
        );
      }
    }
  }
  return out;
}

/** The read check of model-sql.ts on both renderings (an `is_incremental` block may read more). */
export function checkWhatItDoes(
  node: DraftNode,
  file: { file: string; sql: string },
  renderer: Renderer,
  scope: RenderScope,
  nodes: Record<string, DraftNode>,
  diagnostics: Diagnostic[],
  columnNamesOf: (id: string) => readonly string[] | undefined,
): void {
  const allowed = new Set([unquote(cteName('this', node.name))]);
  for (const dep of node.depends_on) if (nodes[dep]) allowed.add(unquote(reservedRelationName(nodes[dep]!)));
  // Practices share a statement (a batch) in tenant-scoped tables, batch_incremental models and
  // what they inline; a view is computed over every practice when a model reads it (as the
  // owner, whom row-level security does not restrict). An incremental model otherwise runs one
  // practice per statement.
  const batched = node.scope === 'tenant' && (node.materialized !== 'incremental' || ('batch_incremental' in node && node.batch_incremental === true));
  const tenantRelations = new Set([unquote(cteName('this', node.name))]);
  for (const dep of node.depends_on) if (nodes[dep]?.scope === 'tenant' || nodes[dep]?.kind === 'tenants') tenantRelations.add(unquote(reservedRelationName(nodes[dep]!)));
  // A seed's columns are its CSV header: a `*` over it is known to hold a practice id column or not.
  const relationColumns = new Map<string, readonly string[]>();
  for (const dep of node.depends_on) {
    const header = nodes[dep]?.kind === 'seed' ? columnNamesOf(dep) : undefined;
    if (header) relationColumns.set(unquote(reservedRelationName(nodes[dep]!)), header);
  }
  // Every column's name where known (a nested one takes an outer alias's place in DuckDB), its own table's too.
  const columnNames = new Map<string, readonly string[]>();
  for (const [relation, id] of [...node.depends_on.flatMap((dep) => (nodes[dep] ? [[unquote(reservedRelationName(nodes[dep]!)), dep] as const] : [])), [unquote(cteName('this', node.name)), node.name] as const]) {
    const names = columnNamesOf(id);
    if (names) columnNames.set(relation.toLowerCase(), names);
  }
  const variants = node.materialized === 'incremental' ? [false, true] : [false];
  const seen = new Set<string>();
  for (const isIncremental of variants) {
    const { sql, lines } = renderer.renderMapped(file.sql, { ...scope, isIncremental, bare: true });
    const kCount = 'k_count' in node ? node.k_count : undefined;
    const kProblem = kCount === undefined ? undefined : kCountShapeProblem(sql, kCount);
    if (kProblem && !seen.has(kProblem)) {
      seen.add(kProblem);
      diagnostics.push(diagnostic(Codes.phiLineage, `${node.name} is published with k_anonymity_count="${kCount}" but ${kProblem}; the gate trusts that count, so it must count each cell's rows where the cell is grouped`, { file: file.file, line: lineOfWord(file.sql, kCount) }));
    }
    if (batched) {
      for (const f of tenantIsolationFindings({ sql, tenantColumn: scope.tenantColumn, tenantRelations, relationColumns, columnNames })) {
        if (seen.has(f.message)) continue;
        seen.add(f.message);
        diagnostics.push(diagnostic(Codes.batchMixesPractices, `${node.name} ${f.message}`, { file: file.file, line: lineOfWord(file.sql, f.near) }));
      }
    }
    for (const f of checkModelSql({ sql, allowed, tenantColumn: scope.tenantColumn })) {
      if (seen.has(f.message)) continue;
      seen.add(f.message);
      // A syntax error is where the parser stopped, mapped back to the model's line; a finding about a name, where the name is.
      const mapped = f.offset !== undefined ? lines[lineColumnAt(sql, f.offset).line - 1] : undefined;
      diagnostics.push(diagnostic(Codes.modelSql, `${node.name} ${f.message}`, { file: file.file, line: mapped ?? lineOfWord(file.sql, f.near) }));
    }
  }
}

/**
 * After every model is rendered (upstream SQL is followed), what the research layer assumes of
 * a row: a tokenizing model's rows (those reading the vault) each hold one patient's values
 * (patient-rows.ts); a published aggregate's count is a count of distinct vault person tokens
 * and its rows are each one person's until it groups them; a person-level published relation's
 * rows are each one person's and carry the token (person-rows.ts). Skipped where the count's
 * shape is already refused.
 */
export function checkPersonRows(project: Project, nodes: Record<string, DraftNode>, diagnostics: Diagnostic[]): void {
  const byRelation = new Map(Object.values(nodes).map((n) => [unquote(reservedRelationName(n)), n]));
  const vault = Object.keys(nodes).find((id) => nodes[id]!.kind === 'vault');
  // Without `privacy:` there is no vault and no publication gate to give assumptions to.
  if (vault === undefined) return;
  const vaultNode = nodes[vault]!;
  const patient = vaultNode.unique_key?.at(-1) ?? 'patient_id';
  const keys = { tenant: project.config.tenantColumn, patient };
  const lookup = (name: string): Relation | undefined => {
    if (name.startsWith(unquote(cteName('this', '')))) return { kind: 'self' };
    const node = byRelation.get(name);
    if (node?.kind === 'vault') return { kind: 'vault' };
    if (node?.kind === 'seed') return { kind: 'seed', name: node.name };
    if (node?.kind === 'source') return { kind: 'source', patients: Object.keys(node.columns).length === 0 || patient in node.columns };
    if (node?.kind !== 'model' || node.lineage_sql === undefined) return undefined;
    const sqls = [node.lineage_sql, node.lineage_incremental_sql].filter((x): x is string => x !== undefined);
    return { kind: 'model', tokenizes: node.depends_on.includes(vault), sqls };
  };
  // Below the research layer a column is data as stored (measure-derivation.ts).
  const research = (name: string): Relation | undefined => {
    const r = lookup(name);
    return r?.kind === 'model' && byRelation.get(name)?.schema !== project.config.schemas.research && byRelation.get(name)?.pseudonymized !== true ? { kind: 'source', patients: false } : r;
  };
  for (const file of project.models) {
    const node = nodes[file.name];
    if (node?.kind !== 'model' || node.lineage_sql === undefined || !node.depends_on.includes(vault)) continue;
    const problem = [node.lineage_sql, node.lineage_incremental_sql].map((sql) => sql && patientRowsProblem(sql, lookup, keys)).find((p) => p !== undefined);
    if (problem) diagnostics.push(diagnostic(Codes.phiLineage, `${node.name} gives person tokens to rows that may hold another patient's values: ${problem}`, { file: file.file, line: lineOfWord(file.sql, vaultNode.name) }));
  }
  // A practice's research slice may read a global research relation per person (its rows are one
  // person's, matched on the token), never across persons: a cross join put every practice's
  // persons into each slice, under any name or encoding of their tokens (red-team, 2026-12-07).
  // A tokenizing model's rows are held to one patient's above.
  for (const file of project.models) {
    const node = nodes[file.name];
    if (node?.kind !== 'model' || node.scope !== 'tenant' || !node.pseudonymized || node.lineage_sql === undefined || node.depends_on.includes(vault)) continue;
    const global = node.depends_on.map((d) => globalModelFrom(d, nodes)).find((g) => g !== undefined);
    if (global === undefined) continue;
    const problem = [node.lineage_sql, node.lineage_incremental_sql].map((sql) => sql && personRowsProblem(sql, lookup, keys.tenant)).find((p) => p !== undefined);
    if (problem) {
      diagnostics.push(
        diagnostic(Codes.phiLineage, `${node.name} is a practice's research slice that reads the global model '${global}', so each of its rows must be one person's: ${problem}`, { file: file.file, line: lineOfWord(file.sql, global) }),
      );
    }
  }
  // The first published model whose checks read each seed's practice id: where its diagnostic goes.
  const seedReader = new Map<string, { file: string; sql: string }>();
  for (const file of project.models) {
    const node = nodes[file.name];
    if (node?.kind !== 'model' || node.schema !== project.config.schemas.research || node.materialized === 'ephemeral' || node.lineage_sql === undefined) continue;
    const kCount = 'k_count' in node ? node.k_count : undefined;
    if (kCount !== undefined && diagnostics.some((d) => d.code === Codes.phiLineage && d.file === file.file && d.message.includes(`k_anonymity_count="${kCount}"`))) continue;
    for (const sql of [node.lineage_sql, node.lineage_incremental_sql]) {
      if (sql === undefined) continue;
      const problem = kCount === undefined ? personLevel(sql, lookup, keys.tenant) : aggregateProblem(sql, kCount, lookup, research, keys.tenant);
      if (!problem) continue;
      const line = kCount === undefined ? 1 : lineOfWord(file.sql, kCount);
      diagnostics.push(diagnostic(Codes.phiLineage, `${node.name} is published ${problem}`, { file: file.file, line }));
      break;
    }
    for (const seed of seedsReadByPracticeId(lookup)) if (!seedReader.has(seed)) seedReader.set(seed, file);
  }
  checkPracticeSeeds(project, seedsReadByPracticeId(lookup), seedReader, diagnostics);
}

/** practice-seeds.ts: the seeds whose practice id published relations read tell practices apart in classes of k or more. */
function checkPracticeSeeds(project: Project, names: ReadonlySet<string>, readers: ReadonlyMap<string, { file: string; sql: string }>, diagnostics: Diagnostic[]): void {
  const seeds = project.seeds.filter((s) => names.has(s.name));
  if (seeds.length === 0 || !project.config.privacy) return;
  const first = seeds.map((s) => s.name).sort()[0]!;
  const at = readers.get(first);
  const where = at ? { file: at.file, line: lineOfWord(at.sql, first) } : { file: seeds[0]!.file, line: 1 };
  const listed = seeds.map((s) => s.name).sort().join(', ');
  const unreadable = unreadablePracticeSeed(seeds);
  if (unreadable) {
    diagnostics.push(diagnostic(Codes.phiLineage, `seed ${unreadable.name} is joined on the practice id below a published relation but cannot be read, so how it tells practices apart cannot be checked`, where));
    return;
  }
  const { k } = project.config.privacy;
  // Published rows come from the practices that take part in research: a class of k practices of
  // which fewer take part publishes fewer practices' cells.
  const taking = project.tenants.filter((t) => t.research).map((t) => t.id);
  const small = smallPracticeClasses(seeds, taking, project.config.tenantColumn, k);
  if (!small) return;
  diagnostics.push(
    diagnostic(
      Codes.phiLineage,
      `seed${seeds.length > 1 ? 's' : ''} ${listed}, joined on the practice id below a published relation, put ${small.practices} practice(s) in combinations of values held by fewer than k=${k} practices (the smallest: ${small.smallest}, e.g. ${small.examples.join(', ')}); a predicate on them picks those practices, and a total over every practice beside it gives their cells by differencing. Give every combination of values (a practice not listed counts as one) at least ${k} practices of tenants.yml that take part in research (research: false ones do not count), or none`,
      where,
    ),
  );
}

/**
 * A practice withheld from research (tenants.yml `research: false`) is taken out of each
 * pseudonymized table's slices (execute/research-withheld.ts). A pseudonymized tenant-scoped view
 * or ephemeral model has no slices: it would show every practice's rows to what reads it.
 */
export function checkWithheldResearchModel(
  project: Project,
  model: { name: string; materialized: string; scope: string; pseudonymized: boolean },
  at: { file: string; line?: number },
  diagnostics: Diagnostic[],
): void {
  const withheld = project.tenants.find((t) => !t.research);
  if (!withheld || !model.pseudonymized || model.scope !== 'tenant' || (model.materialized !== 'view' && model.materialized !== 'ephemeral')) return;
  diagnostics.push(
    diagnostic(
      Codes.invalidConfig,
      `${model.name}: a pseudonymized tenant-scoped model is a table or incremental while tenants.yml withholds practices from research (${withheld.id} at ${withheld.file}:${withheld.line ?? '?'} has research: false): a ${model.materialized} has no per-practice slices to leave them out of`,
      at,
    ),
  );
}

/**
 * While practices are withheld, a pseudonymized tenant-scoped model may not read a global model:
 * its slices would hold values computed from every practice's research rows. A global relation
 * built before the withdrawal still counts the withheld practices, and a slice built from it
 * keeps that after the global relation is rebuilt clean; nothing records what a slice read.
 */
export function checkWithheldGlobalRead(
  project: Project,
  node: DraftNode,
  nodes: Record<string, DraftNode>,
  lineOfRead: (dep: string) => number | undefined,
  diagnostics: Diagnostic[],
): void {
  const withheld = project.tenants.find((t) => !t.research);
  if (!withheld || node.kind !== 'model' || !node.pseudonymized || node.scope !== 'tenant') return;
  for (const dep of node.depends_on) {
    // Through any model in between (a tenant view over a global table reads it as well).
    const global = globalModelFrom(dep, nodes);
    if (!global) continue;
    const via = global === dep ? '' : ` through '${dep}'`;
    diagnostics.push(
      diagnostic(
        Codes.invalidConfig,
        `${node.name}: a pseudonymized tenant-scoped model reads the global model '${global}'${via} while tenants.yml withholds practices from research (${withheld.id} at ${withheld.file}:${withheld.line ?? '?'} has research: false): its slices would keep values computed from their rows`,
        { file: node.path, line: lineOfRead(dep) ?? 1 },
      ),
    );
  }
}

/** `start` or the first global model upstream of it, if any. */
function globalModelFrom(start: string, nodes: Record<string, DraftNode>): string | undefined {
  const seen = new Set<string>();
  const stack = [start];
  while (stack.length > 0) {
    const name = stack.pop()!;
    const n = nodes[name];
    if (!n || seen.has(name)) continue;
    seen.add(name);
    if (n.kind === 'model' && n.scope === 'global') return name;
    stack.push(...n.depends_on);
  }
  return undefined;
}

function aggregateProblem(sql: string, kCount: string, lookup: RelationLookup, research: RelationLookup, tenantColumn: string): string | undefined {
  const counted = countedPersonsProblem(sql, kCount, lookup);
  const mixed = counted ? undefined : personRowsProblem(sql, lookup, tenantColumn);
  const tokens = counted || mixed ? undefined : measuredTokensProblem(sql, kCount, lookup);
  const part = counted || mixed || tokens ? undefined : measuredPartProblem(sql, kCount, research);
  const problem = counted ?? (mixed && `its cells may not be persons' own values: ${mixed}`) ?? tokens ?? part;
  return problem && `with k_anonymity_count="${kCount}" but ${problem}`;
}

function personLevel(sql: string, lookup: RelationLookup, tenantColumn: string): string | undefined {
  const problem = personLevelProblem(sql, lookup, tenantColumn);
  return problem && `row by row (k-anonymous classes, no k_anonymity_count) but ${problem.startsWith('outputs') ? problem : `its rows may not be one person's each: ${problem}`}`;
}
