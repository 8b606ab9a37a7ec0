import type { Adapter } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';
import { safeType } from '../warehouse/load-csv.ts';
import { quoteIdent } from '../sql/quote.ts';
import { readSourceShape, type RawState, type ResolvedSpec, type SourceShape } from './capture-chunk.ts';
import { loadChunk, type ChunkSource } from './chunk-load.ts';
import { chunkTransaction } from './chunk-transaction.ts';
import type { OltpReadSession, OltpSource } from './oltp-source.ts';
import { planDrift } from './source-columns.ts';
import { STEADY, type Watermark } from './watermarks.ts';

/** A practice of a batch captured together, from its own watermark. */
export interface GroupMember {
  tenant: string;
  after: Watermark | undefined;
}

/** What the group's transaction did for one practice. */
export interface GroupCounts {
  /** Live rows written to raw. */
  loaded: number;
  /** Soft-deleted rows seen (their keys were removed from raw). */
  deleted: number;
  /** Practices outside the group whose slices lost rows that moved to one of its members. */
  movedOutOf: string[];
}

/**
 * Captures a batch's small backlogs in ONE read and ONE warehouse transaction (chunkTransaction): every member's
 * lock row, its rows after its own watermark below `horizon` (the horizon the batch was checked
 * with, so each backlog can only have shrunk since: updated rows move above it), the upsert into
 * raw, the moved-row check, the deletion epochs and every member's new watermark. Either all of
 * it commits or none does, as for one practice's chunk; each member ends caught up to the
 * horizon. Used only for members whose backlog the check counted below one chunk's share; a
 * failure (any member's) rolls everything back and the caller captures each member on its own.
 */
export async function captureGroup(
  wh: Adapter,
  oltp: OltpSource,
  spec: ResolvedSpec,
  metaSchema: string,
  raw: RawState,
  members: readonly GroupMember[],
  opts: { horizon: string; timeoutMs?: number },
): Promise<Map<string, GroupCounts>> {
  const tenants = members.map((m) => m.tenant);
  const { result, movedOutOf } = await chunkTransaction(wh, oltp, spec, metaSchema, raw, { tenants, stream: STEADY }, async (s) => {
    const read = await oltp.readTransaction(
      async (r) => {
        const shape = await readSourceShape(r, spec);
        // new columns (and their fill) are the per-practice chunk's work
        if (planDrift(spec.label, shape.columns, raw.columns).add.length > 0) throw new TsformError(Codes.schemaChanged, `capture ${spec.label}: the source's columns changed since the batch was checked`);
        const select = await bindGroupSelect(r, spec, shape, members, opts.horizon);
        const source: ChunkSource = {
          s,
          spec,
          metaSchema,
          tenants,
          columns: shape.selected,
          positionIndexes: shape.positionIndexes,
          deletedIndex: shape.deletedIndex,
          after: undefined,
          chunkRows: 1,
          copy: async (_after, _limit, format) => r.copyOut(select, format),
        };
        const load = await loadChunk(wh, source);
        // in the same snapshot as the COPY: exactly the last of the rows it read, per member
        return { load, last: await lastPositions(r, spec, shape) };
      },
      { timeoutMs: opts.timeoutMs },
    );
    const { elsewhere } = await read.load.finish();
    const counted = [...read.load.byTenant.keys()].sort();
    const positioned = [...read.last.keys()].sort();
    if (counted.join('\u0000') !== positioned.join('\u0000')) {
      throw new TsformError(Codes.sqlError, `capture ${spec.label}: a batch read ${counted.length} practice(s) with rows but found the position of ${positioned.length}`);
    }
    return {
      elsewhere,
      lostRows: [...read.load.byTenant].filter(([, c]) => c.deleted > 0).map(([t]) => t),
      watermarks: [...read.last].map(([tenant, wm]) => ({ tenant, wm, rows: read.load.byTenant.get(tenant)!.rows })),
      result: new Map(
        tenants.map((t): [string, GroupCounts] => {
          const c = read.load.byTenant.get(t) ?? { rows: 0, deleted: 0 };
          return [t, { loaded: c.rows - c.deleted, deleted: c.deleted, movedOutOf: [] }];
        }),
      ),
    };
  });
  // a member that lost a row to another member is in this transaction: its models come after it
  const outside = movedOutOf.filter((t) => !tenants.includes(t));
  for (const counts of result.values()) counts.movedOutOf = outside;
  return result;
}

const GUC = {
  tenants: 'tsform.group_tenants',
  ts: 'tsform.group_ts',
  key: (i: number) => `tsform.group_k${i}`,
  fresh: 'tsform.group_new',
  horizon: 'tsform.group_horizon',
};

/** The members' arrays as transaction-local settings (COPY binds no parameters); the SELECT reads them back. */
async function bindGroupSelect(r: OltpReadSession, spec: ResolvedSpec, shape: SourceShape, members: readonly GroupMember[], horizon: string): Promise<string> {
  const known = members.filter((m) => m.after !== undefined);
  const fresh = members.filter((m) => m.after === undefined).map((m) => m.tenant);
  const settings: [string, string[] | string][] = [
    [GUC.tenants, known.map((m) => m.tenant)],
    [GUC.ts, known.map((m) => m.after!.updatedAt)],
    ...spec.key.map((_, i): [string, string[]] => [GUC.key(i), known.map((m) => m.after!.key[i]!)]),
    [GUC.fresh, fresh],
    [GUC.horizon, horizon],
  ];
  await r.query(`SELECT ${settings.map(([g], i) => `set_config('${g}', $${i + 1}, true)`).join(', ')}`, settings.map(([, v]) => v));
  const tc = quoteIdent(spec.tenantColumn);
  const cols = shape.selected.map((c) => `t.${quoteIdent(c.name)}`).join(', ');
  const below = belowHorizon(shape);
  const arr = (g: string) => `CAST(current_setting('${g}') AS text[])`;
  const bounds = shape.order.map((c, i) => `CAST(w.${i === 0 ? 'ts' : `k${i - 1}`} AS ${safeType(c.sourceType)})`);
  const position = `(${shape.order.map((c) => `t.${quoteIdent(c.name)}`).join(', ')})`;
  return (
    `SELECT ${cols} FROM ${shape.rel} AS t JOIN unnest(${[GUC.tenants, GUC.ts, ...spec.key.map((_, i) => GUC.key(i))].map(arr).join(', ')}) AS w(p, ts, ${spec.key.map((_, i) => `k${i}`).join(', ')})
        ON t.${tc} = w.p WHERE ${position} > (${bounds.join(', ')})${below}
     UNION ALL
     SELECT ${cols} FROM ${shape.rel} AS t JOIN unnest(${arr(GUC.fresh)}) AS w(p) ON t.${tc} = w.p WHERE true${below}`
  );
}

/** The horizon applies to a timestamptz updated column only (as in bindChunkSelect). */
function belowHorizon(shape: SourceShape): string {
  const upd = shape.order[0]!;
  return upd.sourceType === 'timestamp with time zone' ? ` AND t.${quoteIdent(upd.name)} < CAST(current_setting('${GUC.horizon}') AS timestamptz)` : '';
}

/**
 * Each member's last position among the rows the group's SELECT reads (same settings, same
 * snapshot), printed as COPY printed them (the session's text output): its new watermark.
 */
async function lastPositions(r: OltpReadSession, spec: ResolvedSpec, shape: SourceShape): Promise<Map<string, Watermark>> {
  const tc = quoteIdent(spec.tenantColumn);
  const below = belowHorizon(shape);
  const arr = (g: string) => `CAST(current_setting('${g}') AS text[])`;
  const bounds = shape.order.map((c, i) => `CAST(w.${i === 0 ? 'ts' : `k${i - 1}`} AS ${safeType(c.sourceType)})`);
  const position = `(${shape.order.map((c) => `t.${quoteIdent(c.name)}`).join(', ')})`;
  const out = shape.order.map((c, i) => `t.${quoteIdent(c.name)}::text AS __tsf_pos${i}`).join(', ');
  const desc = shape.order.map((c) => `t.${quoteIdent(c.name)} DESC`).join(', ');
  const last = (from: string, where: string) =>
    `SELECT w.p AS tenant, m.* FROM ${from} CROSS JOIN LATERAL (SELECT ${out} FROM ${shape.rel} AS t WHERE t.${tc} = w.p${where}${below} ORDER BY ${desc} LIMIT 1) AS m`;
  const { rows } = await r.query(
    `${last(`unnest(${[GUC.tenants, GUC.ts, ...spec.key.map((_, i) => GUC.key(i))].map(arr).join(', ')}) AS w(p, ts, ${spec.key.map((_, i) => `k${i}`).join(', ')})`, ` AND ${position} > (${bounds.join(', ')})`)}
     UNION ALL
     ${last(`unnest(${arr(GUC.fresh)}) AS w(p)`, '')}`,
  );
  return new Map(
    rows.map((row) => {
      const values = shape.order.map((_, i) => row[`__tsf_pos${i}`]);
      if (values.some((v) => v === null || v === undefined)) {
        throw new TsformError(Codes.sqlError, `capture ${spec.label}: the updated column or a key column is NULL in the source; capture needs them set`);
      }
      const [updatedAt, ...key] = values.map(String);
      return [String(row.tenant), { updatedAt: updatedAt!, key }];
    }),
  );
}
