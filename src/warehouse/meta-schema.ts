import type { Adapter, TargetKind } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';
import { retrying, type RetryPolicy } from '../schedule/index.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import { count, createTableSql, instant, table, text, type Queryable, type RowOf } from './table-def.ts';

/**
 * The meta schema (`tsform_meta`): run history, practice state, capture watermarks and locks,
 * the landing-file record, deletion epochs and logical capture's queue and slots, and the
 * versioned migrations that bring a warehouse of any earlier shape up to the current one;
 * `schema_version` records each applied step. Table definitions: table-def.ts; the vault's own
 * tables: vault-tables.ts.
 */

// ---- the meta schema ---------------------------------------------------------------------

/** Run history (DESIGN §6): one row per node and practice per run; freshness, prediction and alerts read it. */
export const NODE_RUNS = table('node_runs', {
  run_id: text,
  command: text,
  node: text,
  model: text,
  tenant: { type: 'VARCHAR', nullable: true },
  kind: text,
  status: text,
  rows_affected: { type: 'BIGINT', nullable: true },
  duration_ms: count,
  code: { type: 'VARCHAR', nullable: true },
  finished_at: instant,
});

/** Each practice's loaded-through date and last successful full run. */
export const TENANT_STATE = table(
  'tenant_state',
  { tenant: text, loaded_through: { type: 'DATE' }, last_success_at: instant, last_run_id: text },
  ['tenant'],
);

/**
 * Position up to which one (source table, practice, stream) has been captured: the last row's
 * `updated_at` as the OLTP printed it and its key values as a JSON array.
 */
export const CAPTURE_WATERMARKS = table('capture_watermarks', {
  source_table: text,
  tenant: text,
  stream: text,
  updated_at: text,
  key_json: text,
  rows_captured: count,
  captured_at: instant,
});

/**
 * One row per (table, practice): every chunk, steady or backfill, updates it first, so two
 * chunks of one practice never interleave their OLTP read and their commit.
 */
export const CAPTURE_LOCKS = table('capture_locks', { source_table: text, tenant: text, chunks: count });

/** Which landing files are in raw, per (source, practice): a file is loaded again only if it changed. */
export const LANDING_FILES = table('landing_files', {
  source_table: text,
  tenant: text,
  file: text,
  size_bytes: count,
  mtime_ms: count,
  rows_loaded: count,
  loaded_at: instant,
});

/**
 * Deletions that incremental models must absorb (warehouse/deletion-epochs.ts). For a loaded
 * source (`relation` = `source` = its raw relation): how many times a load removed rows from the
 * practice's slice. For a model's slice: the epoch of each upstream source it has absorbed.
 */
export const DELETION_EPOCHS = table('deletion_epochs', { relation: text, tenant: text, source: text, epoch: count }, ['relation', 'tenant', 'source']);

/**
 * The SQL each incremental model's slices were built by (warehouse/relation-versions.ts):
 * `version` is a hash of the model's compiled renderings and of its upstream's; `tenant` is a
 * practice, or `*` for a relation built whole. A slice whose version differs is rebuilt in full,
 * not merged.
 */
export const RELATION_VERSIONS = table('relation_versions', { relation: text, tenant: text, version: text }, ['relation', 'tenant']);

/**
 * Per stored global relation built from research slices: the practices withheld from research
 * (JSON array) when it was last built (execute/research-builds.ts). A relation with no row, or
 * without a practice withheld now, may still count that practice and is rebuilt before anything
 * reads it.
 */
export const WITHHELD_AT_BUILD = table('withheld_at_build', { relation: text, withheld_json: text }, ['relation']);

/**
 * Log-based capture's per-practice queue (ingest/logical/): each change of a source transaction,
 * routed by practice, committed with the commit end LSN it came from (`lsn`: sixteen hex digits,
 * so text order is LSN order; `seq`: order within the transaction). `op` is `upsert` or
 * `delete`; `row_json` holds the values as the OLTP printed them (a column absent from it is an
 * unchanged TOASTed value: raw keeps its own). A practice's extract applies and deletes its rows.
 */
export const LOGICAL_QUEUE = table('logical_queue', {
  source_table: text,
  tenant: text,
  lsn: text,
  seq: count,
  op: text,
  key_json: text,
  row_json: { type: 'VARCHAR', nullable: true },
});

/**
 * One row per replication slot tsform owns: the commit end LSN up to which the stream is in the
 * queue (written with the queue rows; the slot is confirmed only after), and the tables whose
 * initial copy came from the slot's snapshot (JSON array of `schema.table`).
 */
export const LOGICAL_SLOTS = table('logical_slots', { slot: text, lsn: text, tables_json: text, updated_at: instant }, ['slot']);

/**
 * Per practice: how many times log-based capture changed its raw slices (`captured`), and the
 * count its last successful model run had seen (`built`); `state:captured` selects the practices
 * where they differ.
 */
export const CAPTURED_CHANGES = table('captured_changes', { tenant: text, captured: count, built: count }, ['tenant']);

/**
 * Per slot: the OLTP's cumulative modification counters of each captured table at a moment the
 * queue held every change before (change-evidence.ts), so that a lost slot re-copies only the
 * tables whose counters moved since. JSON, one row per slot.
 */
export const LOGICAL_EVIDENCE = table('logical_evidence', { slot: text, evidence_json: text, updated_at: instant }, ['slot']);

/**
 * Captured tables whose changes cannot be applied to raw (a column changed to a type raw's column
 * cannot hold): their apply fails naming the reason until the table is copied again.
 */
export const LOGICAL_BLOCKED = table('logical_blocked', { source_table: text, reason: text, since_lsn: text }, ['source_table']);

/**
 * A `--full-refresh` over every practice (execute/full-refresh.ts): the per-practice relations
 * it has not created again yet, per refresh (a run, or a distributed run shared by its workers).
 * The first slice written in the refresh takes its relation's row and creates the table again,
 * carrying the other practices' previous rows; `rebuilt_json` lists the relations the refresh
 * builds (a view reading the table may be dropped with it only if it is one of them).
 */
export const FULL_REFRESH_PENDING = table('full_refresh_pending', { refresh: text, relation: text, rebuilt_json: text }, ['refresh', 'relation']);

/** One row per applied migration step; the warehouse's version is the highest. */
export const SCHEMA_VERSION = table('schema_version', { version: { type: 'INTEGER' }, description: text, applied_at: instant });

/** The meta tables keyed by practice (column `tenant`): what a retired practice leaves behind. */
export const TENANT_KEYED_TABLES = [NODE_RUNS, CAPTURE_WATERMARKS, CAPTURE_LOCKS, LANDING_FILES, TENANT_STATE, DELETION_EPOCHS, LOGICAL_QUEUE, CAPTURED_CHANGES, RELATION_VERSIONS] as const;

export type NodeRunRow = RowOf<typeof NODE_RUNS>;
export type TenantStateRow = RowOf<typeof TENANT_STATE>;
export type CaptureWatermarkRow = RowOf<typeof CAPTURE_WATERMARKS>;
export type CaptureLockRow = RowOf<typeof CAPTURE_LOCKS>;
export type LandingFileRow = RowOf<typeof LANDING_FILES>;
export type SchemaVersionRow = RowOf<typeof SCHEMA_VERSION>;
export type DeletionEpochRow = RowOf<typeof DELETION_EPOCHS>;
// ---- migrations ------------------------------------------------------------------------------

interface MigrationStep {
  version: number;
  description: string;
  /** Statements of the step on this engine; each must be safe on a warehouse part of which already has it. */
  statements(metaSchema: string, kind: TargetKind): string[];
}

const META_TABLES = [NODE_RUNS, TENANT_STATE, CAPTURE_WATERMARKS, CAPTURE_LOCKS, LANDING_FILES, DELETION_EPOCHS, LOGICAL_QUEUE, LOGICAL_SLOTS, CAPTURED_CHANGES, LOGICAL_EVIDENCE, LOGICAL_BLOCKED] as const;

/**
 * Version 1 is the shape before versioning, when each module created its table on first use:
 * `IF NOT EXISTS` adopts whichever of them a warehouse has and adds the rest. To change a table,
 * change its definition above and add a step; never edit a released one. A fresh warehouse gets
 * step 1 from the current definitions, so every later step must also be a no-op on the tables
 * it made (`ADD COLUMN IF NOT EXISTS`, `CREATE INDEX IF NOT EXISTS`).
 */
const STEPS: readonly MigrationStep[] = [
  {
    version: 1,
    description: 'run history, practice state, capture watermarks and locks, landing files',
    statements: (m) => META_TABLES.map((t) => createTableSql(m, t)),
  },
  {
    version: 2,
    description: 'PostgreSQL: indexes for the per-chunk watermark and lock lookups and the run-history window',
    // Each chunk commit looks up its practice's lock and watermark row, among tables × practices
    // rows. DuckDB scans these tables with its zone maps; an ART index there would be held in
    // memory for no gain, so the step has nothing to do on DuckDB.
    statements: (m, kind) =>
      kind !== 'postgres'
        ? []
        : [
            `CREATE INDEX IF NOT EXISTS capture_watermarks_position ON ${quoteRelation(m, CAPTURE_WATERMARKS.name)} (source_table, tenant, stream)`,
            `CREATE INDEX IF NOT EXISTS capture_locks_practice ON ${quoteRelation(m, CAPTURE_LOCKS.name)} (source_table, tenant)`,
            `CREATE INDEX IF NOT EXISTS landing_files_practice ON ${quoteRelation(m, LANDING_FILES.name)} (source_table, tenant)`,
            `CREATE INDEX IF NOT EXISTS node_runs_finished_at ON ${quoteRelation(m, NODE_RUNS.name)} (finished_at)`,
          ],
  },
  {
    version: 3,
    description: 'deletion epochs: deletes in loaded sources reach incremental models',
    statements: (m) => [createTableSql(m, DELETION_EPOCHS)],
  },
  {
    version: 4,
    description: 'log-based capture: per-practice queue, slot positions, practices changed since their last model run',
    statements: (m, kind) => [
      createTableSql(m, LOGICAL_QUEUE),
      createTableSql(m, LOGICAL_SLOTS),
      createTableSql(m, CAPTURED_CHANGES),
      ...(kind === 'postgres' ? [`CREATE INDEX IF NOT EXISTS logical_queue_practice ON ${quoteRelation(m, LOGICAL_QUEUE.name)} (source_table, tenant, lsn, seq)`] : []),
    ],
  },
  {
    version: 5,
    description: 'log-based capture: modification counters per slot (a lost slot re-copies only changed tables), tables blocked by a column type change',
    statements: (m) => [createTableSql(m, LOGICAL_EVIDENCE), createTableSql(m, LOGICAL_BLOCKED)],
  },
  {
    version: 6,
    description: 'incremental models: the SQL each slice was built by (a changed model rebuilds its slices in full)',
    statements: (m) => [createTableSql(m, RELATION_VERSIONS)],
  },
  {
    version: 7,
    description: 'research: the practices withheld when each global research relation was last built',
    statements: (m) => [createTableSql(m, WITHHELD_AT_BUILD)],
  },
  {
    version: 8,
    description: 'full refresh: the relations a refresh over every practice has not created again yet (previous rows kept until then)',
    statements: (m) => [createTableSql(m, FULL_REFRESH_PENDING)],
  },
];

/** The version this tsform writes and reads. */
export const META_VERSION = STEPS[STEPS.length - 1]!.version;

export interface MetaMigration {
  /** The warehouse's version before (0: no schema_version table). */
  from: number;
  to: number;
  /** Steps this migration applied (callers sharing one in flight see the same); empty when another had applied them. */
  applied: number[];
}

/** Migrations of one adapter in flight, per meta schema: concurrent callers in one process share one. */
const inFlight = new WeakMap<Adapter, Map<string, Promise<MetaMigration>>>();

/**
 * Brings the meta schema to META_VERSION: creates it on a fresh warehouse, adopts and completes
 * the tables of an unversioned (version 1) one, applies later steps, each recorded in
 * `schema_version` in the same transaction. Idempotent, and safe when several processes migrate
 * at once: on PostgreSQL the steps run under a transaction-scoped advisory lock, so the second
 * process waits and then finds nothing to do; on DuckDB (one writing process per file) callers
 * in this process share one migration, and a write conflict with any other is retried. A
 * warehouse of a newer version than this tsform knows is refused (TSF419).
 */
export async function migrateMeta(adapter: Adapter, metaSchema: string): Promise<MetaMigration> {
  const seen = await versionOf(adapter, metaSchema);
  if (seen >= META_VERSION) return { from: checkKnown(seen, metaSchema), to: seen, applied: [] };
  const running = inFlight.get(adapter) ?? new Map<string, Promise<MetaMigration>>();
  inFlight.set(adapter, running);
  let migration = running.get(metaSchema);
  if (!migration) {
    migration = withConflictRetry(adapter, () => migrateOnce(adapter, metaSchema)).finally(() => running.delete(metaSchema));
    running.set(metaSchema, migration);
  }
  return migration;
}

async function migrateOnce(adapter: Adapter, metaSchema: string): Promise<MetaMigration> {
  await adapter.ensureSchema(metaSchema);
  return adapter.transaction(async (s) => {
    if (adapter.kind === 'postgres') {
      await s.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', ['tsform.meta', metaSchema]);
    }
    await s.query(createTableSql(metaSchema, SCHEMA_VERSION));
    const from = checkKnown(await appliedVersion(s, metaSchema), metaSchema);
    const applied: number[] = [];
    for (const step of STEPS.filter((st) => st.version > from)) {
      for (const statement of step.statements(metaSchema, adapter.kind)) await s.query(statement);
      // The server's clock: when a step was applied is a fact about the warehouse, not the run.
      await s.query(`INSERT INTO ${quoteRelation(metaSchema, SCHEMA_VERSION.name)} (version, description, applied_at) VALUES ($1, $2, now())`, [step.version, step.description]);
      applied.push(step.version);
    }
    if (applied.length > 0) await checkColumns(s, metaSchema);
    return { from, to: Math.max(from, META_VERSION), applied };
  });
}

/** The highest applied step, or 0 when the meta schema has no schema_version table yet. */
async function versionOf(adapter: Adapter, metaSchema: string): Promise<number> {
  return (await adapter.describe(metaSchema, SCHEMA_VERSION.name)) ? appliedVersion(adapter, metaSchema) : 0;
}

async function appliedVersion(q: Queryable, metaSchema: string): Promise<number> {
  const { rows } = await q.query(`SELECT max(version) AS v FROM ${quoteRelation(metaSchema, SCHEMA_VERSION.name)}`);
  return Number(rows[0]?.v ?? 0);
}

function checkKnown(version: number, metaSchema: string): number {
  if (version > META_VERSION) {
    throw new TsformError(
      Codes.metaSchema,
      `${metaSchema} is at version ${version}, newer than this tsform knows (${META_VERSION}): a newer tsform migrated it; upgrade tsform before running against this warehouse`,
    );
  }
  return version;
}

/**
 * An adopted table that predates version 1 (or was changed by hand) must still have every column
 * tsform writes; checked in the migration's transaction, so a refused shape records no version.
 */
async function checkColumns(s: Queryable, metaSchema: string): Promise<void> {
  const { rows } = await s.query('SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1', [metaSchema]);
  const have = new Set(rows.map((r) => `${String(r.table_name)}.${String(r.column_name)}`));
  const problems: string[] = [];
  for (const t of [...META_TABLES, SCHEMA_VERSION]) {
    const missing = Object.keys(t.columns).filter((c) => !have.has(`${t.name}.${c}`));
    if (missing.length > 0) problems.push(`${metaSchema}.${t.name}: missing column(s) ${missing.join(', ')}`);
  }
  if (problems.length > 0) {
    throw new TsformError(Codes.metaSchema, `tsform's meta tables do not have the shape of version ${META_VERSION}: ${problems.join('; ')}`);
  }
}

/** Two migrators creating the same catalog entry at once: the loser retries and finds it done. */
function withConflictRetry<T>(adapter: Adapter, run: () => Promise<T>): Promise<T> {
  return retrying(run, { classify: (err) => adapter.classifyError(err), policy: MIGRATION_RETRY_POLICY });
}

/**
 * The loser waits for the winner's whole migration to commit, which under load takes longer than
 * a build's four quick retries (~0.3 s): seen as a DuckDB catalog write-write conflict that
 * outlived them at load 8. Bounded by time, like a lock wait.
 */
const MIGRATION_RETRY_POLICY: Readonly<RetryPolicy> = { maxRetries: Infinity, baseMs: 50, capMs: 1_000, maxElapsedMs: 60_000 };
