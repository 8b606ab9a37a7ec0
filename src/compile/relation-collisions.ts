import type { ManifestNode } from '../artifacts/manifest.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';

/**
 * A model writes its own relation, never one that something else owns: a model named `patients`
 * with `schema="raw"` would replace the source capture loads, and `Foo.sql` beside `foo.sql`
 * would be one table on DuckDB (which matches names without regard to case) and two on
 * PostgreSQL. Compared as DuckDB compares them, so a project that compiles means the same on
 * both engines.
 */
type Owned = Pick<ManifestNode, 'name' | 'kind' | 'schema' | 'identifier' | 'path'>;

export function checkRelationCollisions(
  models: Readonly<Record<string, Owned>>,
  others: readonly Owned[],
  at: (model: string) => { file: string; line: number },
  diagnostics: Diagnostic[],
): void {
  const key = (n: Owned) => `${n.schema}.${n.identifier}`.toLowerCase();
  const owner = new Map<string, Owned>(others.map((n) => [key(n), n]));
  for (const m of Object.values(models)) {
    const taken = owner.get(key(m));
    if (taken) {
      const what = taken.kind === 'model' ? `model ${taken.name}` : taken.kind === 'source' ? `source ${taken.name.replace(/^source:/, '')}` : `${taken.kind} ${taken.name}`;
      diagnostics.push(diagnostic(Codes.invalidConfig, `${m.name}: its relation ${m.schema}.${m.identifier} is already ${what}'s (${taken.schema}.${taken.identifier}); a model cannot write there`, at(m.name)));
      continue;
    }
    owner.set(key(m), m);
  }
}
