/**
 * Coded errors and diagnostics. Codes are stable: tests, CI annotations and runbooks match on
 * them, so a code is never reused for another meaning. Messages must never carry row values
 * (they could be PHI): name files, lines, relations, columns, practice ids and counts only.
 */

export const Codes = {
  // project files (1xx)
  yamlSyntax: 'TSF101',
  yamlShape: 'TSF102',
  missingFile: 'TSF103',
  duplicateModel: 'TSF104',
  invalidTenantId: 'TSF105',
  duplicateTenant: 'TSF106',
  invalidTimezone: 'TSF107',
  invalidSla: 'TSF108',
  raggedCsv: 'TSF109',
  unknownTarget: 'TSF110',
  missingEnv: 'TSF111',
  invalidIdentifier: 'TSF112',
  duplicateSource: 'TSF113',
  unknownPropertyModel: 'TSF114',
  initDirNotEmpty: 'TSF115',
  /** Two practices, or a practice and a fixed or group role, map to one PostgreSQL role (TSF112 is a malformed name). */
  roleNameConflict: 'TSF116',
  /** A yml key no reader knows (a typo like `colums:` would silently drop tests and PHI classes); outside `meta:`. */
  unknownKey: 'TSF117',
  /** sources.yml: a `loader: postgres` `mode:` other than watermark or logical, or a key that mode does not read. */
  captureMode: 'TSF120',
  /** A practice's CSV landing folder is a symbolic link or not a directory (it would load another folder's rows as the practice's). */
  landingFolder: 'TSF121',
  /** A project file or folder is a symbolic link leading outside the project (an error; not read), or to a folder or nothing (a warning). */
  projectLink: 'TSF122',
  // compilation (2xx)
  templateSyntax: 'TSF201',
  unknownRef: 'TSF202',
  unknownSource: 'TSF203',
  /** `ref`, `source`, `config`, `var` given something other than a literal (an unquoted word: quote it). */
  dynamicArgument: 'TSF204',
  invalidConfig: 'TSF205',
  unknownVar: 'TSF206',
  cycle: 'TSF207',
  globalReadsIdentifiable: 'TSF208',
  sharedReadsTenant: 'TSF209',
  unknownMacro: 'TSF210',
  /**
   * A template does not render as written: a name it reads that does not exist where it reads it,
   * a helper or macro that does not exist, a macro call whose arguments do not match its `params:`
   * (compile/template-fields.ts, at the line, before rendering), or an error while rendering.
   */
  renderFailed: 'TSF211',
  unknownTestColumn: 'TSF212',
  unknownPolicyRelation: 'TSF213',
  policyWithoutTenantColumn: 'TSF214',
  phiLineage: 'TSF215',
  strictUnclassifiedColumn: 'TSF216',
  strictUndescribed: 'TSF217',
  strictNoTenantColumn: 'TSF218',
  strictUnknownTestColumn: 'TSF219',
  strictUnusedMacro: 'TSF220',
  stateManifest: 'TSF221',
  modelSql: 'TSF222',
  unapprovedGeneralizer: 'TSF223',
  /** --strict: a model's yml lists a column its SQL does not output (TSF216 is the reverse: an output column the yml does not classify). */
  strictColumnNotOutput: 'TSF224',
  /**
   * --strict notice (a warning): a model's output columns could not be derived from its SQL (the
   * PostgreSQL grammar cannot read it, or `select *` over a relation whose columns are unknown),
   * so its column checks used DESCRIBE on the target, or were skipped.
   */
  strictColumnsUnknown: 'TSF225',
  /** --strict notice (a warning): an incremental model reads `{{this}}` in a correlated sub-select, run once per source row on PostgreSQL. */
  strictCorrelatedThis: 'TSF226',
  /**
   * A column declared below the class its name or its role demands (`ssn: none`, the vault's
   * identity columns): every privacy gate trusts declarations, so lowering one is reviewed in
   * tsform.yml `privacy.not_identifiers`, not in models/ (security/declared-classes.ts).
   */
  identifierDeclassified: 'TSF227',
  /** Slim CI (`--state`): a column production classifies direct or quasi is declared lower, or no longer declared (security/declared-classes.ts). */
  classLowered: 'TSF228',
  /** A warning: a model's yml declares a column below the class its SQL derives (security/phi-gate.ts); readers take the derived class. */
  declaredBelowLineage: 'TSF229',
  /** A warning: a pseudonymized model reads a model whose SQL the lineage analysis cannot follow, so that model's yml classes stand unverified (the run's leak scan still checks). */
  lineageTrustsYml: 'TSF230',
  /** A tenant-scoped model that would mix practices when several share a statement: a join, sub-select, group or window not on the tenant column, or a computed tenant column (compile/tenant-isolation.ts); or that reads a shared or global relation built from every practice's rows (compile/scope-checks.ts). */
  batchMixesPractices: 'TSF231',
  /**
   * A policies/<name>.hbs override that is not a built-in template's name, does not render or
   * parse, or takes away from what the built-in renders (security/template-guard.ts).
   */
  policyTemplate: 'TSF232',
  // selection and command line (3xx)
  badSelector: 'TSF301',
  unknownTenant: 'TSF302',
  badTenantArgument: 'TSF303',
  /** No longer raised: `--full-refresh --tenant` rebuilds those practices' slices (issue 15). Kept so the code is never reused. */
  fullRefreshNeedsAllTenants: 'TSF304',
  /** `--from` / `--to` is not an ISO date or timestamp. */
  badDateArgument: 'TSF305',
  /** `--target-path` / `$TSFORM_TARGET_PATH` is the project folder or one above it (`clean` would empty it). */
  badTargetPath: 'TSF306',
  /** `tsform retry`: no run_results.json to retry from, or one this version cannot read. */
  nothingToRetry: 'TSF307',
  /** `tsform show`: a relation the caller may not preview (research or vault without being a steward), or one not built. */
  showRefused: 'TSF308',
  /** `tsform debug`: a check failed (project files, target connection, vault); the message says which and how to fix it. */
  debugCheckFailed: 'TSF309',
  /**
   * `--full-refresh` would drop a table that a view outside the run reads (PostgreSQL refuses, or
   * CASCADE would drop the view for good): select the view too, or drop it first. Nothing is dropped.
   */
  fullRefreshDependents: 'TSF310',
  /** `run`, `build`, `seed`: tenants.yml lists no practice (missing, or `tenants: []`), so the run would build none and a full refresh would drop every table. */
  noPractices: 'TSF311',
  // execution (4xx)
  sqlError: 'TSF401',
  tenantLeak: 'TSF402',
  schemaChanged: 'TSF403',
  transient: 'TSF404',
  upstreamFailed: 'TSF405',
  testFailed: 'TSF406',
  missingRelation: 'TSF407',
  unsupported: 'TSF408',
  connection: 'TSF409',
  policyCheckFailed: 'TSF410',
  timeout: 'TSF411',
  tenantLocked: 'TSF412',
  vaultKey: 'TSF413',
  privacyGate: 'TSF414',
  reidentify: 'TSF415',
  /** A text sent as one statement held several; the engine itself refused it (extended protocol, prepared statement). */
  multipleStatements: 'TSF416',
  /** DuckDB refused to reach the file system (external access is off once tsform's own files are attached). */
  externalAccess: 'TSF417',
  /**
   * A project or target setting found unusable when a command runs, where compile does not look
   * (no `backfill` pool, a capture without a key, a seed column type, a DuckDB setting name).
   * TSF205 is the compile-time code for a model's or source's config.
   */
  invalidRunSetting: 'TSF418',
  /** tsform's meta tables are of a newer version than this tsform, or lack a column it writes. */
  metaSchema: 'TSF419',
  /** The run was interrupted (Ctrl-C, SIGTERM) before this node ran; what had committed stays. */
  interrupted: 'TSF420',
  /**
   * The vault's match keys were made under other `privacy.identity` linkage settings (or another
   * key): refused until `tsform vault retokenize`, as TSF413 refuses a different key.
   */
  linkageConfig: 'TSF421',
  /**
   * A value of a CSV extract, seed or landing file that its declared (or inferred) type cannot hold: the file, line and column are named, never the value.
   * Also a captured OLTP value the DuckDB warehouse's raw type cannot hold exactly (a BC date or timestamp, a timestamp beyond DuckDB's range,
   * NaN or Infinity in a numeric(p,s)): the table and column are named, and that practice's capture of the table fails (adapters/unloadable-value.ts).
   */
  badValue: 'TSF422',
  /**
   * The rows an incremental model is about to write hold more than one row per key (tenant
   * column and `unique_key`): a merge deletes every row of the slice that shares a staged key, so
   * a key that is not one loses the rows of all but the latest load (a 63-row slice became 3, exit
   * 0). Counted, never printed: key values may be PHI. Nothing of that practice is written; the
   * others go on. A `unique_key` column the rows lack is TSF403.
   */
  uniqueKeyDuplicates: 'TSF423',
  /**
   * A captured table's `key:` (sources.yml) does not identify its rows in the OLTP: no primary key or unique index covers it
   * (with or without the practice column), or a key column allows NULL. Rows sharing a key would replace each other in raw; the table is not captured.
   */
  captureKey: 'TSF424',
  /** `tsform worker`: another live worker already uses this worker id. */
  workerIdTaken: 'TSF460',
  /** A distributed job made by another tsform version or another compiled project: the worker refuses it and stops. */
  workerMismatch: 'TSF461',
  /** `run --distributed --resume <run id>`: that run is finished, closed as abandoned, unknown, or of another selection; also a job of a closed run that a worker is handed (not run). */
  resumeRefused: 'TSF462',
  /**
   * Log-based capture cannot start on this OLTP: `wal_level` is not logical, the role lacks
   * REPLICATION (or CREATE on the database for the publication), or the OLTP source cannot stream.
   * Watermark capture (the default mode) needs none of it.
   */
  logicalUnavailable: 'TSF430',
  /** A captured table's REPLICA IDENTITY does not hold the practice column (a delete could not be routed to its practice). */
  replicaIdentity: 'TSF431',
  /** The replication slot or publication tsform would use exists but is not tsform's (another plugin, database or project), or is in use. */
  slotConflict: 'TSF432',
  /** The slot can no longer give changes (`wal_status = lost`): its tables were copied again from a new snapshot (a notice). */
  slotLost: 'TSF433',
  /** Queued changes carry a column the raw table does not have (it could not be added when its Relation message arrived). */
  logicalSchemaChange: 'TSF434',
  /** A lost slot: only the tables whose modification counters moved are copied again (the notice names them). */
  slotLostPartial: 'TSF435',
  /** A source column changed to a type raw's column cannot hold: the table's apply stops until it is copied again. */
  columnTypeChanged: 'TSF436',
} as const;

export type Code = (typeof Codes)[keyof typeof Codes];

export interface Diagnostic {
  code: Code;
  message: string;
  /** Path relative to the project root, when the problem lives in a file. */
  file?: string;
  /** 1-based line. */
  line?: number;
  column?: number;
  severity: 'error' | 'warning';
}

export function diagnostic(
  code: Code,
  message: string,
  where: { file?: string; line?: number; column?: number } = {},
  severity: Diagnostic['severity'] = 'error',
): Diagnostic {
  return { code, message, severity, ...where };
}

/**
 * A name that came from outside the project (a landing file's name, a CSV header written by a
 * practice) as it may be printed: control characters (a terminal's escape sequences, a carriage
 * return that rewrites the line, a newline that starts a forged log line) and bidirectional
 * overrides become `\u` escapes, so an operator reads the name, not what it would do.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function formatDiagnostic(d: Diagnostic): string {
  const loc = d.file ? `${d.file}${d.line ? `:${d.line}` : ''}${d.column ? `:${d.column}` : ''}: ` : '';
  return `${loc}${d.severity} ${d.code}: ${d.message}`;
}

/**
 * What trying a failed operation again would do (DESIGN §6), the one taxonomy of failures:
 * - `transient`: the statement was fine, the moment was not (lost connection, write conflict,
 *   deadlock, a lock another run holds); retried with backoff.
 * - `permanent`: it would fail the same way every time (an SQL error in a model); never retried.
 * - `cancelled`: tsform or the user stopped it on purpose (a node's statement timeout, an
 *   interrupt); never retried, and reported as such (TSF411 for a timeout).
 * A TsformError carries its class; each engine's adapter classifies its driver's errors.
 */
export type ErrorClass = 'transient' | 'permanent' | 'cancelled';

/** Base class of every error tsform throws on purpose; anything else is a bug. Permanent unless a subclass says otherwise. */
export class TsformError extends Error {
  constructor(
    readonly code: Code,
    message: string,
    readonly where: { file?: string; line?: number } = {},
  ) {
    super(message);
    this.name = 'TsformError';
  }

  /** A getter, not a field: it stays out of JSON and object comparisons of the error. */
  get errorClass(): ErrorClass {
    return 'permanent';
  }

  toDiagnostic(): Diagnostic {
    return diagnostic(this.code, this.message, this.where);
  }
}

/** User errors collected over a whole stage and reported together (exit code 2). */
export class DiagnosticsError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'DiagnosticsError';
  }
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/**
 * Errors the scheduler may retry: the statement was fine, the moment was not. The code says what
 * happened (TSF404 by default; TSF409 for a lost connection, TSF412 for a practice another run
 * holds), so that classifying a failure as transient never changes the code a user sees.
 */
export class TransientError extends TsformError {
  constructor(message: string, code: Code = Codes.transient, where: { file?: string; line?: number } = {}) {
    super(code, message, where);
    this.name = 'TransientError';
  }

  override get errorClass(): ErrorClass {
    return 'transient';
  }
}

/** A statement tsform stopped on purpose (the node timeout, TSF411 by default) or the user interrupted: never retried. */
export class CancelledError extends TsformError {
  constructor(message: string, code: Code = Codes.timeout, where: { file?: string; line?: number } = {}) {
    super(code, message, where);
    this.name = 'CancelledError';
  }

  override get errorClass(): ErrorClass {
    return 'cancelled';
  }
}

/** The class a TsformError carries; undefined for anything else (the engine's adapter classifies those). */
export function errorClassOf(err: unknown): ErrorClass | undefined {
  return err instanceof TsformError ? err.errorClass : undefined;
}
