import { readCommitHorizon, type ResolvedSpec } from './capture-chunk.ts';
import type { OltpReadSession, OltpSource } from './oltp-source.ts';

/**
 * Where the OLTP reads of one steady stream run: a read transaction per chunk, or one held for
 * the whole stream. Reads are sequential (one chunk read ahead at most), never concurrent.
 */
export interface ChunkReader {
  /**
   * Every read sees one snapshot: each key is in at most one of the stream's chunks (the key is
   * unique per practice in a snapshot, and chunks are disjoint position ranges of it).
   */
  readonly oneSnapshot: boolean;
  /** `fn` in a REPEATABLE READ transaction, with the commit horizon its rows stay below. */
  read<T>(fn: (r: OltpReadSession, horizon: string) => Promise<T>): Promise<T>;
  /** Ends a held transaction (a no-op otherwise); its COMMIT writes nothing, so its failure loses nothing. */
  end(): Promise<void>;
}

/** A fresh transaction, and horizon, per chunk: a snapshot and the source table's lock held for one chunk only. */
export function transactionPerChunk(oltp: OltpSource, spec: ResolvedSpec, timeoutMs: number | undefined): ChunkReader {
  return {
    oneSnapshot: false,
    read: async (fn) => {
      const horizon = await readCommitHorizon(oltp, spec.settleSeconds);
      return oltp.readTransaction((r) => fn(r, horizon), { timeoutMs });
    },
    end: async () => undefined,
  };
}

/**
 * One transaction for the whole stream. It holds a snapshot (vacuum waits behind it) and the
 * source table's ACCESS SHARE lock (an ALTER TABLE waits behind it) until `end()`, so a stream
 * using it must be bounded (a time slice, or a backlog read in a few chunks).
 */
export async function oneSnapshot(oltp: OltpSource, spec: ResolvedSpec, timeoutMs: number | undefined): Promise<ChunkReader> {
  // Before the snapshot (taken by the transaction's first statement): every transaction open
  // then writes updated_at at or after the horizon, as in transactionPerChunk.
  const horizon = await readCommitHorizon(oltp, spec.settleSeconds);
  const held = await holdReadTransaction(oltp, timeoutMs);
  return { oneSnapshot: true, read: (fn) => fn(held.session, horizon), end: held.end };
}

/** `readTransaction` kept open across awaits: its session until `end()`, which commits it. */
async function holdReadTransaction(oltp: OltpSource, timeoutMs: number | undefined): Promise<{ session: OltpReadSession; end(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let opened!: (s: OltpReadSession) => void;
  const session = new Promise<OltpReadSession>((resolve) => (opened = resolve));
  const finished = oltp.readTransaction(
    async (s) => {
      opened(s);
      await released;
    },
    { timeoutMs },
  );
  // awaited by end(); a failure to begin reaches the caller through the race below
  finished.catch(() => undefined);
  const s = await Promise.race([
    session,
    finished.then(() => {
      throw new Error('the OLTP read transaction ended before it began');
    }),
  ]);
  return {
    session: s,
    end: async () => {
      release();
      await finished;
    },
  };
}
