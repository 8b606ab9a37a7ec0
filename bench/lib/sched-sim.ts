import { IndexedMinHeap } from '../../src/schedule/indexed-heap.ts';
import type { Chain, SimUnit } from './sched-workload.ts';

/** What the simulation drives: the FairScheduler and the FIFO baseline both fit. */
export interface Dispatcher {
  submit(unit: SimUnit): void;
  dispatch(): SimUnit | undefined;
  complete(unit: SimUnit, elapsedMs: number): void;
}

export interface SimResult {
  /** Per chain id: virtual time its last node completed. */
  chainDoneMs: Map<string, number>;
  makespanMs: number;
  /** Sum of node durations executed: equal across policies for one workload (asserted). */
  busyMs: number;
  nodes: number;
  maxConcurrent: number;
}

interface Event {
  at: number;
  seq: number;
  unit: SimUnit;
  index: number;
}

/**
 * Discrete-event simulation on a virtual clock: no sleeping, no wall time, deterministic.
 * Every time something completes, the dispatcher is asked for units until it has none to
 * start; each started unit completes at now + its duration. A chain's next node is submitted
 * when its node completes, before `complete` is called (the order the runner should use).
 * `chains` are submitted in the order given, all at time 0.
 */
export function simulate(dispatcher: Dispatcher, chains: readonly Chain[], slotsCap: number): SimResult {
  const events = new IndexedMinHeap<Event>(
    (a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq),
    { get: (e) => e.index, set: (e, i) => (e.index = i) },
  );
  const chainById = new Map(chains.map((c) => [c.id, c]));
  const chainDoneMs = new Map<string, number>();
  let now = 0;
  let seq = 0;
  let busyMs = 0;
  let nodes = 0;
  let maxConcurrent = 0;
  for (const c of chains) dispatcher.submit(c.nodes[0]!);
  for (;;) {
    for (let u = dispatcher.dispatch(); u; u = dispatcher.dispatch()) {
      events.push({ at: now + u.durationMs, seq: seq++, unit: u, index: -1 });
      maxConcurrent = Math.max(maxConcurrent, events.size);
      if (events.size > slotsCap) throw new Error(`simulation: ${events.size} units in flight with ${slotsCap} slots`);
    }
    const next = events.peek();
    if (!next) break;
    events.remove(next);
    now = next.at;
    const u = next.unit;
    busyMs += u.durationMs;
    nodes++;
    const chain = chainById.get(u.chain)!;
    const following = chain.nodes[u.step + 1];
    if (following) dispatcher.submit(following);
    else chainDoneMs.set(chain.id, now);
    dispatcher.complete(u, u.durationMs);
  }
  const expected = chains.reduce((n, c) => n + c.nodes.length, 0);
  if (nodes !== expected || chainDoneMs.size !== chains.length) throw new Error(`simulation ran ${nodes} of ${expected} nodes`);
  return { chainDoneMs, makespanMs: now, busyMs, nodes, maxConcurrent };
}

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
