import type { ManifestNode } from '../artifacts/manifest.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import type { ProjectConfig, SourceTable } from '../project/types.ts';
import { PARTITION_SUFFIX, partitionName } from '../sql/partition-names.ts';
import { ownSchema } from './model-config.ts';
import { reservedRelationName } from './render.ts';

type Owned = Pick<ManifestNode, 'name' | 'kind' | 'schema' | 'identifier' | 'path'>;

/**
 * A model writes its own relation, never one that something else owns: a model named `patients`
 * with `schema="raw"` would replace the source capture loads, and `Foo.sql` beside `foo.sql`
 * would be one table on DuckDB (which matches names without regard to case) and two on
 * PostgreSQL. Compared as DuckDB compares them, so a project that compiles means the same on
 * both engines.
 */
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

/**
 * A tenant-scoped table may be partitioned by practice on PostgreSQL (a target option, which can
 * be turned on later), into relations named after it (sql/partition-names.ts): a model's table,
 * or the raw table capture loads a source into. A model or seed named like one of them wrote its
 * own relation there: the partition was dropped with every row it held, the run said success,
 * and later runs of the partitioned model failed for those practices (red-team, 2026-12-07:
 * `practice_daily_activity__rest` as a shared table).
 */
export function checkPartitionNames(
  owners: readonly (Owned & Pick<ManifestNode, 'scope'>)[],
  writers: readonly Owned[],
  at: (node: Owned) => { file: string; line: number },
  diagnostics: Diagnostic[],
): void {
  const partitioned = owners.filter((o) => o.scope === 'tenant');
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  for (const w of writers) {
    const suffix = PARTITION_SUFFIX.exec(w.identifier)?.[0];
    if (suffix === undefined) continue;
    // A long table name's partitions are shortened with a hash, differently per suffix length.
    const table = partitioned.find((t) => t !== w && same(t.schema, w.schema) && same(partitionName(t.identifier, suffix.toLowerCase()), w.identifier));
    if (!table) continue;
    const whose = table.kind === 'model' ? `model ${table.name}'s table` : `the table of ${table.name.replace(/^source:/, 'source ')}`;
    diagnostics.push(
      diagnostic(
        Codes.invalidConfig,
        `${w.name}: its relation ${w.schema}.${w.identifier} is the name of a partition of ${whose} when it is partitioned by practice (partition_by_practice); rename the ${w.kind}`,
        at(w),
      ),
    );
  }
}

/**
 * A source is what tsform reads from outside itself, declared once: not a relation in a schema
 * tsform writes (`schema: vault` made the vault's key a source a mart could select) or the
 * engine's catalog or the row-level security schema, not a second
 * declaration of a relation another source declares (`raw.patients` again as `scope: shared`),
 * and, when shared with every practice, not a table that carries the tenant column (each
 * practice's models would read every practice's rows).
 */
export function checkSources(sources: readonly SourceTable[], config: ProjectConfig, securitySchema: string, diagnostics: Diagnostic[]): void {
  const own = new Map<string, string>();
  for (const [role, schema] of Object.entries(config.schemas)) if (role !== 'raw') own.set(schema.toLowerCase(), role);
  for (const f of config.folders) if (f.schema && f.schema.toLowerCase() !== config.schemas.raw.toLowerCase()) own.set(f.schema.toLowerCase(), 'models');
  const declared = new Map<string, SourceTable>();
  const reservedNames = new Map<string, SourceTable>();
  const tenantColumn = config.tenantColumn.toLowerCase();
  for (const s of sources) {
    const at = { file: s.file, line: s.line };
    const name = `${s.source}.${s.name}`;
    const role = own.get(s.schema.toLowerCase());
    // The engine's catalogs describe every relation, with values: pg_stats keeps the most common
    // values of each column the reader owns (raw.patients' names), and a shared model in marts
    // copied them to every practice. The membership table is tsform's like the vault.
    const system = role ? undefined : ownSchema(s.schema, config, securitySchema);
    if (role) diagnostics.push(diagnostic(Codes.invalidConfig, `source ${name} is declared in schema '${s.schema}', which tsform writes (${role}); a source is read from outside tsform`, at));
    else if (system) diagnostics.push(diagnostic(Codes.invalidConfig, `source ${name} is declared in schema '${s.schema}', ${system}; a source is a table of the OLTP or another system, read from outside tsform`, at));
    // Models read a source under one reserved name, `source__table`: source a's table b__c and
    // source a__b's table c were one name, and checks read one source's columns for the other's.
    const reserved = reservedRelationName({ kind: 'source', name: `source:${name}` }).toLowerCase();
    const twin = reservedNames.get(reserved);
    if (twin) diagnostics.push(diagnostic(Codes.invalidConfig, `source ${name} and source ${twin.source}.${twin.name} (${twin.file}${twin.line ? `:${twin.line}` : ''}) have one name in models' SQL (${reserved}); rename one (a source or table name with __ joins differently)`, at));
    else reservedNames.set(reserved, s);
    const key = `${s.schema}.${s.identifier}`.toLowerCase();
    const first = declared.get(key);
    if (first) diagnostics.push(diagnostic(Codes.invalidConfig, `source ${name} declares ${s.schema}.${s.identifier} again (source ${first.source}.${first.name}, ${first.file}${first.line ? `:${first.line}` : ''}); a relation has one declaration`, at));
    else declared.set(key, s);
    if (s.scope === 'shared' && s.columns.some((c) => c.name.toLowerCase() === tenantColumn)) {
      diagnostics.push(diagnostic(Codes.globalReadsIdentifiable, `source ${name} is shared with every practice but has the tenant column ${config.tenantColumn}: its rows belong to practices, so it is scope: tenant`, at));
    }
  }
}
