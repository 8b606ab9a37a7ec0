import { manifestNodes, type Manifest, type ManifestNode } from '../artifacts/manifest.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import type { PhiClass } from '../project/types.ts';
import { modelLineAt } from '../compile/line-map.ts';
import { selectItemOffset } from '../compile/model-sql.ts';
import { columnLineage } from './phi-lineage.ts';

/**
 * Compile-time privacy gate (DESIGN §4): a pseudonymized relation may expose no `direct`
 * column, and no `quasi` column that did not pass through an approved generalization macro.
 * Classes propagate through select lists: a pseudonymized model's output classes are derived
 * from its SQL (generalized columns become `none`), not taken from its yml, so models that read
 * it inherit what it really holds.
 */
export function checkPseudonymizedLineage(manifest: Manifest, order: readonly string[]): Diagnostic[] {
  const nodes = manifestNodes(manifest);
  // Two views of each pseudonymized model's output: `exposed` (a generalized column is no longer
  // identifying) for the exposure gate, and `quasi` (a generalized column is still a
  // quasi-identifier) so that k-anonymity knows every quasi-identifier a published relation holds.
  const exposed = new Map<string, Record<string, PhiClass>>();
  const quasi = new Map<string, Record<string, PhiClass>>();
  const declared = (n: ManifestNode): Record<string, PhiClass> => Object.fromEntries(Object.entries(n.columns).map(([c, v]) => [c, v.phi]));
  const diagnostics: Diagnostic[] = [];

  for (const id of order) {
    const node = nodes[id];
    if (!node || node.kind !== 'model' || !node.pseudonymized || node.lineage_sql === undefined) continue;
    const relationsFor = (view: Map<string, Record<string, PhiClass>>) => {
      const relations: Record<string, Record<string, PhiClass>> = {};
      for (const dep of node.depends_on) {
        const up = nodes[dep];
        if (!up) continue;
        const classes = view.get(up.name) ?? declared(up);
        const short = up.kind === 'source' ? `__tsf_src_${up.name.replace(/^source:/, '').replace('.', '__')}` : `__tsf_ref_${up.name}`;
        relations[short] = classes;
        relations[`${up.schema}.${up.identifier}`] = classes;
      }
      relations[`__tsf_this_${node.name}`] = view.get(node.name) ?? declared(node);
      return relations;
    };
    // At the select-list item of the column (or the list's start), mapped to the model's line.
    const lineOf = (column?: string) => modelLineAt(node, selectItemOffset(node.compiled_sql, column)) ?? 1;
    const at = { file: node.path, line: lineOf() };
    const result = columnLineage({ sql: node.lineage_sql, relations: relationsFor(exposed) });
    if (!result.ok) {
      diagnostics.push(diagnostic(Codes.phiLineage, `${node.name}: cannot prove which columns carry PHI (${result.error}); a pseudonymized model must be analysable`, at));
      continue;
    }
    for (const path of result.implicitDirect) {
      diagnostics.push(diagnostic(Codes.phiLineage, `${node.name} reads a direct identifier outside its select list (a predicate, join, grouping or order can encode it): ${path}`, at));
    }
    const out: Record<string, PhiClass> = {};
    for (const [column, c] of Object.entries(result.columns)) {
      out[column] = c.phi;
      const path = c.lineage[0] ?? column;
      if (c.phi === 'direct') {
        diagnostics.push(diagnostic(Codes.phiLineage, `${node.name}.${column} exposes a direct identifier: ${path}`, { file: node.path, line: lineOf(column) }));
      } else if (c.phi === 'quasi') {
        diagnostics.push(
          diagnostic(Codes.phiLineage, `${node.name}.${column} exposes a quasi-identifier not passed through an approved generalization macro: ${path}`, { file: node.path, line: lineOf(column) }),
        );
      }
    }
    exposed.set(node.name, out);

    const qi = columnLineage({ sql: node.lineage_sql, relations: relationsFor(quasi), generalizers: [] });
    if (!qi.ok) continue;
    const qiOut: Record<string, PhiClass> = {};
    for (const [column, c] of Object.entries(qi.columns)) {
      qiOut[column] = c.phi;
      if (c.phi === 'quasi' && result.columns[column]?.phi === 'none' && node.columns[column]?.phi !== 'quasi') {
        diagnostics.push(
          diagnostic(Codes.phiLineage, `${node.name}.${column} is a generalized quasi-identifier; declare it phi: quasi in the model's yml so k-anonymity covers it (${c.lineage[0] ?? column})`, at),
        );
      }
    }
    quasi.set(node.name, qiOut);
  }
  return diagnostics;
}
