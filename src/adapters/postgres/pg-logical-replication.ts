import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import {
  lsnFromBigInt,
  lsnToBigInt,
  ZERO_LSN,
  type LogicalChange,
  type LogicalRelation,
  type LogicalReplicationSource,
  type LogicalTransaction,
  type ReplicationStream,
  type SlotSnapshot,
  type StreamHandler,
  type Tuple,
} from '../logical-replication.ts';
import { CAPTURE_APPLICATION_NAME } from '../oltp-source.ts';
import { searchPathOption, withSessionOptions } from './session-options.ts';

/**
 * Timestamps and dates are printed in UTC, ISO, by the walsender's output functions (its GUCs);
 * search_path as in session-options.ts (a function planted in the OLTP's `public`).
 */
const SESSION_OPTIONS = `-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=1 ${searchPathOption()}`;
/** A standby status update at least this often: wal_sender_timeout (60 s) must never fire while we work. */
const STATUS_INTERVAL_MS = 5_000;
/** The socket is paused while more than this many messages wait (a big transaction is buffered whole anyway). */
const PAUSE_AT = 5_000;

/**
 * pgoutput values as PostgreSQL printed them: pg-logical-replication parses each column with
 * pg's global type parsers (a timestamp would become a JS Date and lose its microseconds), so
 * every column of a Relation message gets the identity parser before any tuple is read.
 */
class TextPgoutputPlugin extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    const msg = super.parse(buffer);
    if (msg.tag === 'relation') for (const c of msg.columns) c.parser = (raw: unknown) => raw;
    return msg;
  }
}

type Event = { kind: 'data'; msg: Pgoutput.Message } | { kind: 'keepalive'; lsn: string };

export class PgLogicalReplication implements LogicalReplicationSource {
  constructor(private readonly url: string) {}

  async createSlot(slot: string): Promise<SlotSnapshot> {
    const client = new pg.Client({ ...withSessionOptions(this.url, SESSION_OPTIONS), replication: 'database', application_name: CAPTURE_APPLICATION_NAME } as pg.ClientConfig);
    client.on('error', () => undefined);
    await client.connect();
    try {
      // The slot name is checked by the caller (lower-case letters, digits, underscores); the
      // replication grammar binds no parameters.
      const r = await client.query(`CREATE_REPLICATION_SLOT "${slot}" LOGICAL pgoutput (SNAPSHOT 'export')`);
      const row = r.rows[0] as { consistent_point: string; snapshot_name: string };
      // The exported snapshot lives while this connection stays open and idle.
      return { consistentPoint: row.consistent_point, snapshotName: row.snapshot_name, release: () => client.end().catch(() => undefined) };
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  async start(opts: { slot: string; publication: string; startLsn: string; handler: StreamHandler; applicationName?: string }): Promise<ReplicationStream> {
    const service = new LogicalReplicationService(
      { ...withSessionOptions(this.url, SESSION_OPTIONS), application_name: opts.applicationName ?? CAPTURE_APPLICATION_NAME } as pg.ClientConfig,
      // no automatic acknowledgement: a keepalive must never move the slot past unapplied changes
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
    let confirmed = opts.startLsn;
    let stopped = false;
    let failure: unknown;
    const events: Event[] = [];
    let pumping = false;
    let open: LogicalTransaction | undefined;
    let resolveDone!: () => void;
    let rejectDone!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolveDone = res;
      rejectDone = rej;
    });
    done.catch(() => undefined);
    const socket = (): { pause?(): void; resume?(): void } | undefined => (service as unknown as { _connection?: { stream?: { pause?(): void; resume?(): void } } })._connection?.stream;

    // acknowledge(x) reports x + 1 to the server; the exact LSN is reported by passing lsn − 1.
    const report = (ping = false): void => {
      const n = lsnToBigInt(confirmed);
      if (n === 0n) {
        if (ping) void service.acknowledge(ZERO_LSN, true).catch(() => undefined);
        return;
      }
      void service.acknowledge(lsnFromBigInt(n - 1n), ping).catch(() => undefined);
    };
    const finish = async (err?: unknown): Promise<void> => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      events.length = 0;
      await service.destroy().catch(() => undefined);
      if (err === undefined) resolveDone();
      else rejectDone(err);
    };
    const handle = async (e: Event): Promise<void> => {
      if (e.kind === 'keepalive') {
        if (!open) await opts.handler.onKeepalive(e.lsn);
        return;
      }
      const msg = e.msg;
      switch (msg.tag) {
        case 'begin':
          open = { commitEndLsn: ZERO_LSN, relations: [], changes: [] };
          return;
        case 'relation':
          open?.relations.push(relationOf(msg));
          return;
        case 'insert':
          open?.changes.push({ op: 'insert', relation: relationOf(msg.relation), new: tupleOf(msg.new) });
          return;
        case 'update':
          open?.changes.push({ op: 'update', relation: relationOf(msg.relation), old: msg.old ? tupleOf(msg.old) : msg.key ? tupleOf(msg.key) : null, new: tupleOf(msg.new) });
          return;
        case 'delete':
          open?.changes.push({ op: 'delete', relation: relationOf(msg.relation), old: tupleOf(msg.old ?? msg.key ?? {}) });
          return;
        case 'truncate':
          open?.changes.push({ op: 'truncate', relations: msg.relations.map(relationOf) });
          return;
        case 'commit': {
          const tx = open;
          open = undefined;
          if (!tx || !msg.commitEndLsn) return;
          tx.commitEndLsn = msg.commitEndLsn;
          await opts.handler.onTransaction(tx);
          return;
        }
        case 'type':
        case 'origin':
        case 'message':
          return;
        default: {
          const never: never = msg;
          throw new Error(`unknown pgoutput message ${JSON.stringify(never)}`);
        }
      }
    };
    const pump = async (): Promise<void> => {
      if (pumping) return;
      pumping = true;
      try {
        while (events.length > 0 && !stopped) {
          await handle(events.shift()!);
          if (events.length < PAUSE_AT / 2) socket()?.resume?.();
        }
      } catch (err) {
        failure = err;
        await finish(err);
      } finally {
        pumping = false;
      }
    };
    const push = (e: Event): void => {
      if (stopped) return;
      events.push(e);
      if (events.length >= PAUSE_AT) socket()?.pause?.();
      void pump();
    };
    service.on('data', (_lsn: string, msg: Pgoutput.Message) => push({ kind: 'data', msg }));
    service.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) => {
      // answered at once with what is applied, whatever is still queued here
      if (shouldRespond) report();
      push({ kind: 'keepalive', lsn });
    });
    service.on('error', (err: unknown) => void finish(failure ?? err));
    const timer = setInterval(() => report(), STATUS_INTERVAL_MS);
    timer.unref();
    const started = new Promise<void>((resolve) => service.once('start', () => resolve()));
    service
      .subscribe(new TextPgoutputPlugin({ protoVersion: 1, publicationNames: [opts.publication] }), opts.slot, opts.startLsn)
      .then(
        () => finish(),
        (err: unknown) => finish(err),
      );
    await Promise.race([started, done]);
    return {
      confirm(lsn) {
        if (lsnToBigInt(lsn) > lsnToBigInt(confirmed)) confirmed = lsn;
        report();
      },
      ping: () => report(true),
      stop: () => finish(),
      done,
    };
  }
}

/** The parser hands every change of a table the same Relation object (until the next Relation message): converted once. */
const relations = new WeakMap<Pgoutput.MessageRelation, LogicalRelation>();

function relationOf(r: Pgoutput.MessageRelation): LogicalRelation {
  let out = relations.get(r);
  if (!out) {
    out = convertRelation(r);
    relations.set(r, out);
  }
  return out;
}

function convertRelation(r: Pgoutput.MessageRelation): LogicalRelation {
  return {
    oid: r.relationOid,
    schema: r.schema,
    table: r.name,
    replicaIdentity: r.replicaIdentity,
    columns: r.columns.map((c) => ({ name: c.name, typeOid: c.typeOid, typeMod: c.typeMod, inIdentity: (c.flags & 1) === 1 })),
  };
}

/** Unchanged TOASTed values come out of the parser as undefined: they stay absent here. */
function tupleOf(t: Record<string, unknown>): Tuple {
  const out: Tuple = {};
  for (const [k, v] of Object.entries(t)) {
    if (v === undefined) continue;
    out[k] = v === null ? null : String(v);
  }
  return out;
}

export type { LogicalChange };
