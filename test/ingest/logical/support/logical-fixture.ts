import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Adapter } from '../../../../src/adapters/adapter.ts';
import type { OltpSource } from '../../../../src/adapters/oltp-source.ts';
import { resolveSpec, type ResolvedSpec } from '../../../../src/ingest/capture-spec.ts';
import { LogicalCapture, streamNotices } from '../../../../src/ingest/logical/logical-capture.ts';
import { logicalObjectName } from '../../../../src/ingest/logical/slot-setup.ts';
import { copyCaptureProject, rawDiffers } from '../../support/capture-project.ts';

export const TABLES = ['encounters', 'procedures'] as const;
const KEYS: Record<string, string> = { encounters: 'encounter_id', procedures: 'procedure_id' };

export function specsOf(tables: readonly string[] = TABLES): ResolvedSpec[] {
  return tables.map((t) => resolveSpec({ table: t, key: [KEYS[t]!], tenantColumn: 'practice_id' }));
}

export function logicalCaptureOf(wh: Adapter, oltp: OltpSource, project: string, known: readonly string[], tables: readonly string[] = TABLES): LogicalCapture {
  return new LogicalCapture({ wh, oltp, metaSchema: 'tsform_meta', name: logicalObjectName(project, 'TSFORM_OLTP_URL'), tables: specsOf(tables).map((spec) => ({ spec })), known });
}

/** Set-up, the stream up to now, every practice's apply: what one `tsform run` does. Returns the notices. */
export async function captureOnce(lc: LogicalCapture, tenants: readonly string[]): Promise<string[]> {
  const setup = await lc.setUp(tenants);
  const streamed = await lc.stream(setup.lsn, { untilNow: true });
  for (const spec of lc.specs) for (const t of tenants) await lc.apply(spec, t);
  return [...setup.notes, ...streamNotices(lc.o.name, streamed)];
}

/** Practices whose raw slice differs from the OLTP's live rows, over every table (counts and checksums only). */
export async function allDiffers(oltp: Adapter, wh: Adapter, tenants: readonly string[], tables: readonly string[] = TABLES): Promise<string[]> {
  const out: string[] = [];
  for (const t of tables) out.push(...(await rawDiffers(oltp, wh, t, tenants)));
  return out;
}

/** The capture-project fixture in mode logical, named `name` (the slot's name comes from it), with an incremental model on encounters. */
export const INCREMENTAL_ENCOUNTERS = `{{config materialized="incremental" unique_key="encounter_id" batch_incremental=true}}
select practice_id, encounter_id, patient_id, updated_at
from {{source "ehr" "encounters"}} e
{{#if is_incremental}}
where e.updated_at > coalesce((select max(t.updated_at) from {{this}} t where t.practice_id = e.practice_id), timestamptz '-infinity')
{{/if}}
`;

export function logicalProject(tenants: readonly string[], name: string): ReturnType<typeof copyCaptureProject> {
  const project = copyCaptureProject(tenants);
  writeFileSync(join(project.dir, 'models', 'inc_encounters.sql'), INCREMENTAL_ENCOUNTERS);
  const sources = join(project.dir, 'models', 'sources.yml');
  writeFileSync(
    sources,
    readFileSync(sources, 'utf8')
      .replace('        chunk_rows: 700\n', '        mode: logical\n')
      .replace('          - { name: encounter_class, phi: none }', '          - { name: encounter_class, phi: none }\n          - { name: updated_at, phi: none }'),
  );
  const yml = join(project.dir, 'tsform.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8').replace('name: capture_fixture', `name: ${name}`));
  return project;
}

