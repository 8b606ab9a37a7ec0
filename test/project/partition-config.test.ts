import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadProject } from '../../src/project/load-project.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';

/** `partition_by_practice` mistakes are diagnostics with file and line, never a silent default. */

let demo: DemoCopy | undefined;
afterEach(() => demo?.remove());

function withTargets(edit: (yml: string, ids: string[]) => string) {
  demo = copyDemoProject({ tenants: sampleTenants(3) });
  const file = join(demo.dir, 'tsform.yml');
  writeFileSync(file, edit(readFileSync(file, 'utf8'), demo.tenantIds));
  const project = loadProject(demo.dir);
  return { project, lineOf: (text: string) => readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(text)) + 1 };
}

const PG_TARGET = '    url_env: TSFORM_PG_URL   # never a password in this file\n';

describe('partition_by_practice in tsform.yml', () => {
  it('reads the list and the hash partition count of a PostgreSQL target', () => {
    const { project } = withTargets((yml, ids) => yml.replace(PG_TARGET, `${PG_TARGET}    partition_by_practice:\n      list: [${ids[0]}]\n      hash_partitions: 8\n`));
    expect(project.diagnostics).toEqual([]);
    const pgTarget = project.config.targets.postgres!;
    expect(pgTarget.type === 'postgres' && pgTarget.partitionByPractice).toMatchObject({ list: [demo!.tenantIds[0]], hashPartitions: 8 });
  });

  it('refuses it on a DuckDB target, at its line', () => {
    const { project, lineOf } = withTargets((yml) => yml.replace('    path: target/tsform.duckdb\n', '    path: target/tsform.duckdb\n    partition_by_practice: { hash_partitions: 4 }\n'));
    expect(project.diagnostics).toEqual([
      expect.objectContaining({ code: 'TSF102', file: 'tsform.yml', line: lineOf('partition_by_practice'), message: expect.stringMatching(/PostgreSQL option/) }),
    ]);
  });

  it('names a listed practice that tenants.yml lacks (a typo would leave a giant in the hash partitions), with a suggestion', () => {
    const { project, lineOf } = withTargets((yml, ids) => yml.replace(PG_TARGET, `${PG_TARGET}    partition_by_practice:\n      list: [${ids[0]}x]\n`));
    expect(project.diagnostics).toEqual([
      expect.objectContaining({ code: 'TSF102', file: 'tsform.yml', line: lineOf('partition_by_practice'), message: expect.stringMatching(/1 practice\(s\) not in tenants.yml.*did you mean/) }),
    ]);
  });

  it('refuses a practice listed twice, a bad partition count and an unknown key', () => {
    const { project } = withTargets((yml, ids) => yml.replace(PG_TARGET, `${PG_TARGET}    partition_by_practice:\n      list: [${ids[0]}, ${ids[0]}]\n      hash_partitions: 0\n      hash_partition: 4\n`));
    const messages = project.diagnostics.map((d) => `${d.code} ${d.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([expect.stringMatching(/TSF102 .*twice/), expect.stringMatching(/TSF102 'hash_partitions' must be a positive integer/), expect.stringMatching(/TSF117 .*hash_partition.*did you mean/)]),
    );
  });
});
