import type { Adapter } from '../../../../src/adapters/adapter.ts';
import type { OltpSource } from '../../../../src/adapters/oltp-source.ts';
import { resolveSpec, type ResolvedSpec } from '../../../../src/ingest/capture-spec.ts';
import { LogicalCapture, streamNotices } from '../../../../src/ingest/logical/logical-capture.ts';
import { logicalObjectName } from '../../../../src/ingest/logical/slot-setup.ts';
import { rawDiffers } from '../../support/capture-project.ts';

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
