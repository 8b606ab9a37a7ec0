import { describe, expect, it } from 'vitest';
import { FairScheduler } from '../../src/schedule/fair-scheduler.ts';
import { SchedulerStateError } from '../../src/schedule/scheduler-error.ts';
import { GLOBAL_LANE, type SchedulerUnit } from '../../src/schedule/types.ts';
import { drive, submitLane, unit } from './drive.ts';

const onePool = (slots = 1) => new FairScheduler({ pools: { steady: { slots } } });
const lanesOf = (units: readonly SchedulerUnit[]) => units.map((u) => u.lane);

describe('FairScheduler: least service first', () => {
  it('a practice with 5 queued units is not delayed by one with 10,000 (1 slot)', () => {
    const s = onePool(1);
    submitLane(s, 'big', 10_000);
    submitLane(s, 'small', 5);
    const first = drive(s, () => 1, 10);
    expect(first.filter((u) => u.lane === 'small')).toHaveLength(5);
    // The big practice still gets its turns: fair, not a priority inversion.
    expect(first.filter((u) => u.lane === 'big')).toHaveLength(5);
  });

  it('also when the small practice is submitted after the big one has been running a while', () => {
    const s = onePool(1);
    submitLane(s, 'big', 10_000);
    drive(s, () => 1, 500);
    submitLane(s, 'small', 5);
    const next = drive(s, () => 1, 11);
    expect(next.filter((u) => u.lane === 'small')).toHaveLength(5);
  });

  it('service is run time, not node count: a lane with 10× longer units gets ~1/10 of the dispatches', () => {
    const s = onePool(1);
    submitLane(s, 'slow', 5_000);
    submitLane(s, 'fast', 50_000);
    const order = drive(s, (u) => (u.lane === 'slow' ? 10 : 1), 11_000);
    const slow = order.filter((u) => u.lane === 'slow').length;
    expect(slow / order.length).toBeGreaterThan(0.085);
    expect(slow / order.length).toBeLessThan(0.097);
    const a = s.laneCounters('slow')!;
    const b = s.laneCounters('fast')!;
    // Equal time received, within one slow unit.
    expect(Math.abs(a.busy_ms - b.busy_ms)).toBeLessThanOrEqual(10);
  });

  it('a lane that becomes active starts at the least active service: no burst that stalls the others', () => {
    const s = onePool(1);
    submitLane(s, 'a', 1_000);
    drive(s, () => 1, 100);
    submitLane(s, 'late', 1_000);
    expect(s.laneCounters('late')!.service_ms).toBe(s.laneCounters('a')!.service_ms);
    const next = lanesOf(drive(s, () => 1, 20));
    // Alternates instead of giving 'late' the 100 dispatches it "missed".
    expect(next.filter((l) => l === 'late')).toHaveLength(10);
    expect(next.slice(0, 6)).toEqual(['a', 'late', 'a', 'late', 'a', 'late']);
  });

  it('a lane that was idle keeps the service it received (no amnesty)', () => {
    const s = onePool(1);
    submitLane(s, 'a', 10);
    drive(s, () => 5);
    submitLane(s, 'b', 10);
    submitLane(s, 'a', 1, 'steady', 10);
    // a received 50 ms, then was idle; b joins at the floor (50), not at 0, so it gets no run of 10.
    const order = lanesOf(drive(s, () => 5, 3));
    expect(order[0]).toBe('a'); // tie at 50, lane id order
    expect(order.slice(1)).toEqual(['b', 'b']);
  });

  it('breaks ties by lane id, whatever the submission order, and repeats exactly', () => {
    const run = () => {
      const s = onePool(2);
      for (const lane of ['c', 'a', 'd', 'b']) submitLane(s, lane, 3);
      return drive(s, () => 7).map((u) => u.id);
    };
    const order = run();
    expect(order.slice(0, 4)).toEqual(['a#0', 'b#0', 'c#0', 'd#0']);
    expect(run()).toEqual(order);
  });

  it('keeps submission order within a lane', () => {
    const s = onePool(1);
    submitLane(s, 'a', 50);
    expect(drive(s, () => 1).map((u) => u.id)).toEqual(Array.from({ length: 50 }, (_, i) => `a#${i}`));
  });

  it('charges a unit\'s cost at dispatch, so lanes with units in flight are not picked as if idle', () => {
    const s = new FairScheduler({ pools: { steady: { slots: 4 } }, laneLimit: 4 });
    s.submit(unit('a', 0, 'steady', { cost: 100 }));
    s.submit(unit('a', 1, 'steady', { cost: 100 }));
    s.submit(unit('b', 0, 'steady', { cost: 1 }));
    s.submit(unit('b', 1, 'steady', { cost: 1 }));
    expect([s.dispatch(), s.dispatch(), s.dispatch(), s.dispatch()].map((u) => u!.id)).toEqual(['a#0', 'b#0', 'b#1', 'a#1']);
    s.complete('a#0', 40);
    expect(s.laneCounters('a')!.service_ms).toBe(140); // 40 measured + 100 still in flight
  });

  it('a lane allowed several slots does not take them all at a tie before its first completion', () => {
    const s = new FairScheduler({ pools: { steady: { slots: 4 } }, laneLimits: { a: 4 } });
    submitLane(s, 'a', 10);
    for (const lane of ['b', 'c', 'd']) submitLane(s, lane, 1);
    expect([s.dispatch(), s.dispatch(), s.dispatch(), s.dispatch()].map((u) => u!.lane)).toEqual(['a', 'b', 'c', 'd']);
    // Once nobody else is runnable, it does use the idle slots (work-conserving).
    const t = new FairScheduler({ pools: { steady: { slots: 4 } }, laneLimits: { a: 4 } });
    submitLane(t, 'a', 10);
    expect([t.dispatch(), t.dispatch(), t.dispatch(), t.dispatch()].map((u) => u!.lane)).toEqual(['a', 'a', 'a', 'a']);
  });

  it('5,000 lanes: each lane once before any lane twice, and everything completes', () => {
    const s = new FairScheduler({ pools: { steady: { slots: 8 } } });
    const lanes = Array.from({ length: 5_000 }, (_, i) => `p${String(i).padStart(5, '0')}`);
    for (const lane of [...lanes].reverse()) submitLane(s, lane, 3);
    const order = drive(s, () => 2);
    expect(order).toHaveLength(15_000);
    expect(lanesOf(order.slice(0, 5_000))).toEqual(lanes);
    expect(new Set(lanesOf(order.slice(5_000, 10_000))).size).toBe(5_000);
    expect(s.isIdle).toBe(true);
    expect(s.snapshot().lanes).toEqual({ total: 5_000, done: 5_000, failed: 0, running: 0, queued: 0 });
  });
});

describe('FairScheduler: pools and limits', () => {
  const pools = { steady: { slots: 2 }, backfill: { slots: 1 } };

  it('a backfill backlog never takes a steady slot, even when steady is idle', () => {
    const s = new FairScheduler({ pools, laneLimit: 10 });
    submitLane(s, 'big', 100, 'backfill');
    expect(s.dispatch()?.pool).toBe('backfill');
    expect(s.dispatch()).toBeUndefined();
    expect(s.snapshot().pools).toEqual({ backfill: { slots: 1, running: 1, queued: 99 }, steady: { slots: 2, running: 0, queued: 0 } });
    // A steady unit still gets a steady slot at once.
    submitLane(s, 'small', 1, 'steady');
    expect(s.dispatch()?.lane).toBe('small');
  });

  it('steady units never take a backfill slot', () => {
    const s = new FairScheduler({ pools, laneLimit: 10 });
    submitLane(s, 'a', 10, 'steady');
    submitLane(s, 'b', 10, 'steady');
    const got = [s.dispatch(), s.dispatch(), s.dispatch()];
    expect(got.map((u) => u?.pool)).toEqual(['steady', 'steady', undefined]);
    expect(s.snapshot().pools.backfill).toEqual({ slots: 1, running: 0, queued: 0 });
  });

  it('pool slots hold over a whole run with many lanes in both pools', () => {
    const s = new FairScheduler({ pools: { steady: { slots: 3 }, backfill: { slots: 1 } }, laneLimit: 2 });
    for (let i = 0; i < 20; i++) submitLane(s, `s${i}`, 5, 'steady');
    submitLane(s, 'big', 200, 'backfill');
    let maxSteady = 0;
    let maxBackfill = 0;
    const origDispatch = s.dispatch.bind(s);
    s.dispatch = () => {
      const u = origDispatch();
      const p = s.snapshot({ slowest: 0 }).pools;
      maxSteady = Math.max(maxSteady, p.steady!.running);
      maxBackfill = Math.max(maxBackfill, p.backfill!.running);
      return u;
    };
    drive(s, (u) => (u.pool === 'backfill' ? 3 : 1));
    expect([maxSteady, maxBackfill]).toEqual([3, 1]);
    expect(s.snapshot().done).toBe(300);
  });

  it('respects the global limit across pools, sharing it in proportion to slots', () => {
    const s = new FairScheduler({ pools: { steady: { slots: 4 }, backfill: { slots: 4 } }, globalLimit: 2, laneLimit: 10 });
    submitLane(s, 'a', 10, 'steady');
    submitLane(s, 'z', 10, 'backfill');
    const got = [s.dispatch(), s.dispatch(), s.dispatch()];
    expect(got.map((u) => u?.pool)).toEqual(['steady', 'backfill', undefined]);
    expect(s.runningCount).toBe(2);
    // z has now received far more service than a, but backfill uses 0 of its 4 slots and steady
    // 1 of 4: the pool's share of the global limit wins over lane service across pools.
    s.complete(got[1]!, 1_000);
    expect(s.dispatch()?.pool).toBe('backfill');
    expect(s.dispatch()).toBeUndefined();
  });

  it('respects the per-lane limit (default 1) and per-lane overrides', () => {
    const s = new FairScheduler({ pools: { steady: { slots: 8 } }, laneLimits: { [GLOBAL_LANE]: 3 } });
    submitLane(s, 'p1', 10);
    submitLane(s, GLOBAL_LANE, 10);
    const got: SchedulerUnit[] = [];
    for (let u = s.dispatch(); u; u = s.dispatch()) got.push(u);
    expect(got.filter((u) => u.lane === 'p1')).toHaveLength(1);
    expect(got.filter((u) => u.lane === GLOBAL_LANE)).toHaveLength(3);
    s.setLaneLimit('p1', 2);
    expect(s.dispatch()?.lane).toBe('p1');
    expect(s.dispatch()).toBeUndefined();
    // A limit set before the lane's first unit applies to it, and does not invent a lane.
    s.setLaneLimit('p2', 2);
    expect(s.laneCounters('p2')).toBeUndefined();
    submitLane(s, 'p2', 5);
    expect([s.dispatch(), s.dispatch(), s.dispatch()].map((u) => u?.lane)).toEqual(['p2', 'p2', undefined]);
    // Lowering a limit never stops running units; it holds the lane back until it is below.
    s.setLaneLimit(GLOBAL_LANE, 1);
    const globals = got.filter((u) => u.lane === GLOBAL_LANE);
    s.complete(globals[0]!, 1);
    s.complete(globals[1]!, 1);
    expect(s.dispatch()).toBeUndefined();
    s.complete(globals[2]!, 1);
    expect(s.dispatch()?.lane).toBe(GLOBAL_LANE);
  });
});

describe('FairScheduler: outcomes, counters and misuse', () => {
  it('counts per lane and overall; the snapshot is plain JSON', () => {
    const s = new FairScheduler({ pools: { steady: { slots: 2 } } });
    submitLane(s, 'a', 3);
    submitLane(s, 'b', 2);
    const a0 = s.dispatch()!;
    const b0 = s.dispatch()!;
    s.complete(a0, 30, 'success');
    s.complete(b0, 5, 'error');
    const b1 = s.dispatch()!;
    expect(b1.id).toBe('b#1');
    s.complete(b1, 5, 'skipped');
    expect(s.laneCounters('a')).toEqual({ lane: 'a', queued: 2, running: 0, waiting: 0, done: 1, failed: 0, skipped: 0, retries: 0, busy_ms: 30, service_ms: 30 });
    expect(s.laneCounters('b')).toMatchObject({ queued: 0, running: 0, done: 0, failed: 1, skipped: 1, busy_ms: 10 });
    const snap = s.snapshot({ slowest: 1 });
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
    expect(snap).toMatchObject({ running: 0, queued: 2, done: 1, failed: 1, skipped: 1, lanes: { total: 2, failed: 1, queued: 1, running: 0, done: 0 } });
    expect(snap.slowest.map((l) => l.lane)).toEqual(['a']);
    expect(s.slowestLanes(5).map((l) => [l.lane, l.busy_ms])).toEqual([['a', 30], ['b', 10]]);
    expect(s.slowestLanes(5, { activeOnly: true }).map((l) => l.lane)).toEqual(['a']);
    expect(s.allLaneCounters().map((l) => l.lane)).toEqual(['a', 'b']);
  });

  it('retry frees the slot, counts the unit as waiting, and takes it back on resubmit', () => {
    const s = onePool(1);
    submitLane(s, 'a', 1);
    const u = s.dispatch()!;
    s.complete(u, 3, 'retry');
    expect(s.laneCounters('a')).toMatchObject({ running: 0, queued: 0, waiting: 1, retries: 1, busy_ms: 3 });
    expect(s.snapshot().lanes.queued).toBe(1);
    s.submit(u);
    expect(s.laneCounters('a')).toMatchObject({ queued: 1, waiting: 0 });
    s.complete(s.dispatch()!, 4);
    expect(s.laneCounters('a')).toMatchObject({ done: 1, retries: 1, busy_ms: 7 });
  });

  it('yield: a unit that used its time slice goes back behind every lane with less service', () => {
    const s = onePool(1);
    submitLane(s, 'big', 1);
    const backlog = s.dispatch()!;
    submitLane(s, 'small', 3); // arrive while the big practice's capture runs
    const order: string[] = [];
    for (let slice = 0; slice < 4; slice++) {
      s.complete(backlog, 10, 'yield');
      expect(s.laneCounters('big')).toMatchObject({ waiting: 1, retries: 0, done: 0 });
      s.submit(backlog);
      for (let u = s.dispatch(); u && u.lane === 'small'; u = s.dispatch()) {
        order.push(u.id);
        s.complete(u, 1);
      }
      // the loop above dispatched the big unit again when no small one had less service
    }
    // every small unit ran between the big unit's slices, not after its whole backlog
    expect(order).toEqual(['small#0', 'small#1', 'small#2']);
    s.complete(backlog, 10);
    expect(s.laneCounters('big')).toMatchObject({ done: 1, retries: 0, waiting: 0, busy_ms: 50 });
    expect(s.isIdle).toBe(true);
  });

  it('cancelLane drops a lane\'s queued units and leaves its running one', () => {
    const s = onePool(2);
    submitLane(s, 'a', 5);
    submitLane(s, 'b', 1);
    const running = s.dispatch()!;
    expect(running.lane).toBe('a');
    expect(s.cancelLane('a').map((u) => u.id)).toEqual(['a#1', 'a#2', 'a#3', 'a#4']);
    expect(s.dispatch()?.lane).toBe('b');
    expect(s.dispatch()).toBeUndefined();
    expect(s.snapshot().pools.steady).toEqual({ slots: 2, running: 2, queued: 0 });
    s.complete(running, 1);
    expect(s.cancelLane('nobody')).toEqual([]);
  });

  it('refuses misuse with SchedulerStateError', () => {
    const s = onePool(1);
    expect(() => s.submit(unit('a', 0, 'nope'))).toThrow(/pool 'nope'.*steady/);
    s.submit(unit('a', 0));
    expect(() => s.submit(unit('a', 0))).toThrow(SchedulerStateError);
    expect(() => s.complete('a#0', 1)).toThrow(/not running/);
    const u = s.dispatch()!;
    expect(() => s.submit(u)).toThrow(/already queued or running/);
    expect(() => s.complete(u, Number.NaN)).toThrow(/elapsed/);
    expect(() => s.complete(u, -1)).toThrow(/elapsed/);
    s.complete(u, 1);
    expect(() => s.complete(u, 1)).toThrow(/not running/);
    expect(() => new FairScheduler({ pools: { steady: { slots: 0 } } })).toThrow(/slots must be an integer/);
    expect(() => new FairScheduler({ pools: {} })).toThrow(/at least one pool/);
    expect(() => s.submit(unit('a', 9, 'steady', { cost: -1 }))).toThrow(/cost/);
  });
});
