import { IndexedMinHeap } from './indexed-heap.ts';
import { laneLess, poolLaneLess, poolLaneSlot, type PoolLane } from './lane-state.ts';
import type { PoolSnapshot, SchedulerUnit } from './types.ts';

/**
 * One pool: its slots and a heap of the lanes that could run a unit in it now (queue not empty
 * and lane below its limit), least service on top.
 */
export class PoolState<U extends SchedulerUnit> {
  running = 0;
  queued = 0;
  readonly heap = new IndexedMinHeap<PoolLane<U>>(poolLaneLess, poolLaneSlot);

  constructor(
    readonly name: string,
    readonly slots: number,
  ) {}

  get hasFreeSlot(): boolean {
    return this.running < this.slots;
  }

  snapshot(): PoolSnapshot {
    return { slots: this.slots, running: this.running, queued: this.queued };
  }
}

/**
 * Which of two pools, both with a free slot and a runnable lane, dispatches first. Only matters
 * when the global limit is tighter than the pools' slots: the pool using the smaller share of
 * its slots goes first, so pools share the global limit in proportion to their slots and a busy
 * pool cannot starve another. Then the head lanes in lane order (`laneLess`), then pool name.
 */
export function poolFirst<U extends SchedulerUnit>(a: PoolState<U>, b: PoolState<U>): boolean {
  const share = a.running * b.slots - b.running * a.slots;
  if (share !== 0) return share < 0;
  const la = a.heap.peek()!.lane;
  const lb = b.heap.peek()!.lane;
  if (la === lb) return a.name < b.name;
  return laneLess(la, lb);
}
