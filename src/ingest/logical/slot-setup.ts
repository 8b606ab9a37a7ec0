import { createHash } from 'node:crypto';
import { Codes, TsformError } from '../../errors.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import type { ResolvedSpec } from '../capture-spec.ts';
import type { OltpSource } from '../oltp-source.ts';

/**
 * The publication and the replication slot tsform creates on the OLTP for one project and one
 * OLTP (`url_env`): one name for both, lower-case letters, digits and underscores (a slot name
 * allows nothing else), stable across runs, distinct per project and per OLTP.
 */
export function logicalObjectName(project: string, urlEnv: string): string {
  const base = project.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 32) || 'project';
  const hash = createHash('sha256').update(`${project}\u0000${urlEnv}`).digest('hex').slice(0, 8);
  return `tsform_${base}_${hash}`;
}

/** What the slot looks like on the OLTP now. */
export interface SlotState {
  exists: boolean;
  /** wal_status: reserved | extended | unreserved | lost. */
  walStatus?: string;
  /** Bytes of WAL that may still be written before the slot is lost (null: no max_slot_wal_keep_size). */
  safeWalSize?: number | null;
  /** max_slot_wal_keep_size in bytes (-1: unlimited). */
  maxKeepBytes?: number;
  confirmedFlush?: string | null;
  /** The slot is streaming to a session now: the application_name of that session. */
  heldBy?: string;
}

/** The application_name of `tsform capture --follow`'s replication connection: a run then only applies the queue. */
export const FOLLOWER_APPLICATION_NAME = 'tsform-capture-follow';

/**
 * Checks that log-based capture can run on this OLTP, and names what to change when it cannot:
 * wal_level, the role's REPLICATION attribute, each table's REPLICA IDENTITY (practice_id and the
 * key must be in it, or a delete could not be routed to its practice).
 */
export async function checkLogicalPrerequisites(oltp: OltpSource, tables: readonly ResolvedSpec[]): Promise<void> {
  const level = String((await oltp.query('SHOW wal_level')).rows[0]?.wal_level);
  if (level !== 'logical') {
    throw new TsformError(
      Codes.logicalUnavailable,
      `log-based capture needs wal_level = logical on the OLTP (it has ${level}): set it in postgresql.conf and restart the server, or use mode: watermark`,
    );
  }
  const role = (await oltp.query('SELECT rolsuper OR rolreplication AS ok, current_user AS name FROM pg_catalog.pg_roles WHERE rolname = current_user')).rows[0];
  if (role?.ok !== true) {
    throw new TsformError(
      Codes.logicalUnavailable,
      `log-based capture needs a role with REPLICATION on the OLTP: ALTER ROLE ${quoteIdent(String(role?.name ?? 'capture_role'))} REPLICATION (or use mode: watermark)`,
    );
  }
  if (!oltp.replication) throw new TsformError(Codes.logicalUnavailable, 'this OLTP connection cannot open a replication stream (log-based capture)');
  for (const spec of tables) {
    const identity = await replicaIdentityColumns(oltp, spec);
    if (identity === undefined) throw new TsformError(Codes.missingRelation, `capture ${spec.label}: the source table does not exist`);
    if (identity === 'full') continue;
    const needed = [spec.tenantColumn, ...spec.key];
    const lacking = needed.filter((c) => !identity.includes(c));
    if (lacking.length > 0) {
      throw new TsformError(
        Codes.replicaIdentity,
        `capture ${spec.label}: its REPLICA IDENTITY (${identity.length > 0 ? identity.join(', ') : 'none'}) lacks ${lacking.join(', ')}: a delete could not be routed to its practice. ` +
          `Make (${needed.join(', ')}) the primary key, or run ALTER TABLE ${quoteRelation(spec.sourceSchema, spec.table)} REPLICA IDENTITY FULL`,
      );
    }
  }
}

/** The replica identity's columns, `full`, or undefined when the table does not exist. */
async function replicaIdentityColumns(oltp: OltpSource, spec: ResolvedSpec): Promise<string[] | 'full' | undefined> {
  const { rows } = await oltp.query(
    `SELECT c.relreplident::text AS ident,
            ARRAY(SELECT a.attname::text FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                   WHERE i.indrelid = c.oid AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))) AS cols
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [spec.sourceSchema, spec.table],
  );
  if (rows.length === 0) return undefined;
  if (rows[0]!.ident === 'f') return 'full';
  return (rows[0]!.cols as string[]) ?? [];
}

/**
 * The publication holds every captured table (created, or the missing ones added). Returns the
 * tables it did not hold before: their rows must be copied once (changes before are not in the stream).
 */
export async function ensurePublication(oltp: OltpSource, name: string, tables: readonly ResolvedSpec[]): Promise<ResolvedSpec[]> {
  const exists = (await oltp.query('SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1', [name])).rows.length > 0;
  const rels = (ts: readonly ResolvedSpec[]) => ts.map((t) => quoteRelation(t.sourceSchema, t.table)).join(', ');
  try {
    if (!exists) {
      await oltp.query(`CREATE PUBLICATION ${quoteIdent(name)} FOR TABLE ${rels(tables)}`);
      return [...tables];
    }
    const { rows } = await oltp.query('SELECT schemaname::text AS s, tablename::text AS t FROM pg_catalog.pg_publication_tables WHERE pubname = $1', [name]);
    const held = new Set(rows.map((r) => `${String(r.s)}.${String(r.t)}`));
    const missing = tables.filter((t) => !held.has(t.label));
    if (missing.length > 0) await oltp.query(`ALTER PUBLICATION ${quoteIdent(name)} ADD TABLE ${rels(missing)}`);
    return missing;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '42501') {
      throw new TsformError(
        Codes.logicalUnavailable,
        `log-based capture could not ${exists ? 'add tables to' : 'create'} publication ${name}: the OLTP role needs CREATE on the database and must own the captured tables (or create the publication as their owner: CREATE PUBLICATION ${quoteIdent(name)} FOR TABLE ${rels(tables)})`,
      );
    }
    throw err;
  }
}

/** The slot on the OLTP, checked to be tsform's: pgoutput, this database, not streaming to someone else. */
export async function readSlot(oltp: OltpSource, slot: string): Promise<SlotState> {
  const { rows } = await oltp.query(
    `SELECT s.plugin::text AS plugin, s.database::text AS database, current_database()::text AS here, s.active, s.active_pid, s.wal_status::text AS wal_status,
            s.safe_wal_size::text AS safe_wal_size, s.confirmed_flush_lsn::text AS confirmed_flush,
            (SELECT a.application_name::text FROM pg_catalog.pg_stat_activity a WHERE a.pid = s.active_pid) AS held_by,
            (SELECT setting::bigint * (CASE unit WHEN 'MB' THEN 1048576 WHEN 'kB' THEN 1024 ELSE 1 END) FROM pg_catalog.pg_settings WHERE name = 'max_slot_wal_keep_size')::text AS max_keep
       FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1`,
    [slot],
  );
  const r = rows[0];
  if (!r) return { exists: false };
  if (r.plugin !== 'pgoutput' || r.database !== r.here) {
    throw new TsformError(
      Codes.slotConflict,
      `replication slot ${slot} exists but is not tsform's for this database (plugin ${String(r.plugin)}, database ${String(r.database)}): drop it (SELECT pg_drop_replication_slot('${slot}')) or give the project another name`,
    );
  }
  const maxKeep = Number(r.max_keep);
  return {
    exists: true,
    walStatus: r.wal_status === null ? undefined : String(r.wal_status),
    safeWalSize: r.safe_wal_size === null ? null : Number(r.safe_wal_size),
    maxKeepBytes: maxKeep < 0 ? -1 : maxKeep,
    confirmedFlush: r.confirmed_flush === null ? null : String(r.confirmed_flush),
    ...(r.active === true ? { heldBy: String(r.held_by ?? 'another session') } : {}),
  };
}

export async function dropSlot(oltp: OltpSource, slot: string): Promise<void> {
  await oltp.query('SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1', [slot]);
}

/**
 * A warning while the slot still works but holds so much WAL that max_slot_wal_keep_size is near
 * (less than a quarter of it left), or undefined.
 */
export function slotLagWarning(slot: string, state: SlotState): string | undefined {
  if (!state.exists || state.walStatus === 'lost') return undefined;
  if (state.walStatus === 'unreserved') {
    return `replication slot ${slot} holds more WAL than max_slot_wal_keep_size allows: it is about to be lost (then every table is copied again); run capture now`;
  }
  if (state.maxKeepBytes !== undefined && state.maxKeepBytes > 0 && state.safeWalSize !== null && state.safeWalSize !== undefined && state.safeWalSize < state.maxKeepBytes / 4) {
    return `replication slot ${slot} is falling behind: ${Math.max(0, Math.round(state.safeWalSize / 1024))} kB of WAL left before max_slot_wal_keep_size (${Math.round(state.maxKeepBytes / 1024)} kB) makes it lost; run capture more often`;
  }
  return undefined;
}

/** Tables of the OLTP schema(s) that carry the practice column but are not captured: not in the publication, so never streamed. */
export async function uncapturedTables(oltp: OltpSource, tables: readonly ResolvedSpec[]): Promise<string[]> {
  const schemas = [...new Set(tables.map((t) => t.sourceSchema))];
  const tenantColumn = tables[0]?.tenantColumn;
  if (!tenantColumn) return [];
  const { rows } = await oltp.query(
    `SELECT n.nspname::text || '.' || c.relname::text AS label FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped) ORDER BY 1`,
    [schemas, tenantColumn],
  );
  const captured = new Set(tables.map((t) => t.label));
  return rows.map((r) => String(r.label)).filter((l) => !captured.has(l));
}
