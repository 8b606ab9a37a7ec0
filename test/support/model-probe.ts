import type { Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import type { ColumnSpec, PhiClass, Project } from '../../src/project/types.ts';
import { compileErrors } from './compile-errors.ts';
import { REPO_ROOT } from './demo-project.ts';

let demo: Project | undefined;

/**
 * The demo project with one more model (and its yml, every column with the class given), compiled
 * in memory: its errors, [] when it compiles. `extra`: more models the one probed reads.
 */
export function compileModel(
  file: string,
  sql: string,
  columns: Record<string, PhiClass>,
  extra: ProbeModel[] = [],
  seeds: ProbeSeed[] = [],
  edit: (project: Project) => void = () => {},
): Diagnostic[] {
  demo ??= loadProject(REPO_ROOT);
  const project = structuredClone(demo);
  edit(project);
  for (const seed of seeds) {
    const [header = [], ...rows] = seed.rows;
    // every column typed, so that its class is `none` as a seed's typed columns are
    project.seeds.push({ name: seed.name, checksum: seed.name, columnTypes: Object.fromEntries(header.map((h) => [h, 'VARCHAR'])), header, rows, file: `seeds/${seed.name}.csv`, line: 1 });
  }
  for (const m of [...extra, { file, sql, columns }]) {
    const name = m.file.replace(/^.*\//, '').replace(/\.sql$/, '');
    project.models.push({ name, file: m.file, sql: `${m.sql}\n`, line: 1 });
    if (!m.columns) continue;
    const yml = m.file.replace(/[^/]+$/, `_${name}.yml`);
    const column = ([n, phi]: [string, PhiClass]): ColumnSpec => ({ name: n, phi, phiExplicit: true, tests: [], file: yml, line: 1 });
    project.properties.push({ name, file: yml, line: 1, columns: Object.entries(m.columns).map(column) });
  }
  return compileErrors(project);
}

/** A seed beside the demo's: its header, then its rows. */
export interface ProbeSeed {
  name: string;
  rows: string[][];
}

/** A model beside the probed one; with `columns`, a yml classifying them. */
export interface ProbeModel {
  file: string;
  sql: string;
  columns?: Record<string, PhiClass>;
}

/** `TSF231: message` lines, for an assertion's failure output (messages name columns, never values). */
export function shown(errors: readonly Diagnostic[]): string {
  return errors.map((e) => `${e.code}: ${e.message}`).join('\n') || '(compiles)';
}
