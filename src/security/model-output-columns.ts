import type { Manifest, ManifestNode } from '../artifacts/manifest.ts';
import type { PhiClass, Project } from '../project/types.ts';
import { columnLineage } from './phi-lineage.ts';

/**
 * The output columns of every model, read from its compiled SQL with the PostgreSQL grammar (the
 * parser of the PHI lineage gate, phi-lineage.ts: one reading of a select list, not two), for the
 * --strict column checks (issue 15). Pure.
 *
 * `select *` / `t.*` expands to the columns of what it reads when those are known for certain:
 * an upstream model's own derived (or described) columns, a seed's CSV header, tsform's built-in
 * relations. A source's yml column list is a declaration, not what the table holds (the table
 * may have more columns), so `*` over a source is not expanded: such a model's columns are
 * unknown, as are those of a model the grammar cannot read (DuckDB-only syntax).
 *
 * `described` overrides derivation (DESCRIBE on the target, done by the caller): a described
 * model's columns are taken as they are, and models reading it with `*` expand through them.
 */
export interface OutputColumns {
  /** Output column names of each model whose columns are known, in select-list order. */
  known: Record<string, string[]>;
  /** Why each other model's columns could not be derived (no SQL text in the reason). */
  unknown: Record<string, string>;
}

export function deriveOutputColumns(project: Pick<Project, 'seeds'>, manifest: Manifest, described: Record<string, string[]> = {}): OutputColumns {
  const out: OutputColumns = { known: {}, unknown: {} };
  const seedHeaders = new Map(project.seeds.map((s) => [s.name, s.header]));
  const fixed = (node: ManifestNode): string[] | undefined => {
    if (node.kind === 'seed') return seedHeaders.get(node.name);
    if (node.kind === 'tenants' || node.kind === 'vault') return Object.keys(node.columns);
    return undefined;
  };
  const nodeOf = (id: string): ManifestNode | undefined => manifest.models[id] ?? manifest.seeds[id] ?? manifest.sources[id] ?? manifest.builtins[id];
  const visiting = new Set<string>();

  const columnsOf = (id: string): string[] | undefined => {
    const node = nodeOf(id);
    if (!node) return undefined;
    if (node.kind !== 'model') return fixed(node);
    if (described[id]) return (out.known[id] = described[id]);
    if (out.known[id]) return out.known[id];
    if (out.unknown[id] !== undefined || visiting.has(id)) return undefined;
    visiting.add(id);
    const relations: Record<string, Record<string, PhiClass>> = {};
    for (const dep of node.depends_on) {
      const up = nodeOf(dep);
      const cols = columnsOf(dep);
      if (!up || !cols) continue;
      const classes = Object.fromEntries(cols.map((c) => [c, 'none' as PhiClass]));
      // Keyed as the compiled SQL names the relation: schema.identifier (a view, or the body of
      // the tenant-filter CTE, which the analysis follows).
      relations[`${up.schema}.${up.identifier}`] = classes;
    }
    visiting.delete(id);
    const result = columnLineage({ sql: node.compiled_sql, relations });
    if (!result.ok) {
      out.unknown[id] = result.error;
      return undefined;
    }
    const names = Object.keys(result.columns);
    if (names.includes('*')) {
      const opaque = result.columns['*']!.lineage.map((l) => l.replace(/^\* <- /, '')).join('; ');
      out.unknown[id] = `select * over a relation whose columns are not known for certain (${opaque})`;
      return undefined;
    }
    return (out.known[id] = names);
  };

  for (const id of Object.keys(manifest.models)) columnsOf(id);
  return out;
}
