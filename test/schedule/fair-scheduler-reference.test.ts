import { describe, expect, it } from 'vitest';
import { FairScheduler } from '../../src/schedule/fair-scheduler.ts';
import type { SchedulerUnit } from '../../src/schedule/types.ts';
import { prng } from '../support/prng.ts';

/**
 * Random submit / dispatch / complete / retry / cancel sequences, checked step by step against
 * the rules written out naively (a scan of all lanes): limits, least service within the pool,
 * dispatch only refuses when nothing may start, FIFO within a lane, virtual time never falls.
 * Lanes have limits 1 and 2, so the in-flight tie-break is exercised.
 */
describe('FairScheduler against a brute-force reference', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`seed ${seed}`, () => {
      const rand = prng(seed);
      const int = (n: number) => Math.floor(rand() * n);
      const pools = { steady: { slots: 3 }, backfill: { slots: 2 }, adhoc: { slots: 1 } };
      const poolNames = Object.keys(pools) as (keyof typeof pools)[];
      const globalLimit = 4;
      const lanes = Array.from({ length: 30 }, (_, i) => ({
        id: `L${String(int(1000)).padStart(3, '0')}-${i}`,
        pool: poolNames[i % 3]!,
        limit: 1 + (i % 4 === 0 ? 1 : 0),
      }));
      const laneLimits = Object.fromEntries(lanes.map((l) => [l.id, l.limit]));
      const s = new FairScheduler({ pools, globalLimit, laneLimits });

      const queue = new Map<string, SchedulerUnit[]>(lanes.map((l) => [l.id, []]));
      const running: SchedulerUnit[] = [];
      const waiting: SchedulerUnit[] = [];
      let serial = 0;
      let lastVt = 0;
      let checks = 0;

      const eligible = () => {
        const poolRunning = (p: string) => running.filter((u) => u.pool === p).length;
        const laneRunning = (l: string) => running.filter((u) => u.lane === l).length;
        if (running.length >= globalLimit) return [];
        return lanes.filter((l) => queue.get(l.id)!.length > 0 && laneRunning(l.id) < l.limit && poolRunning(l.pool) < pools[l.pool].slots);
      };

      for (let step = 0; step < 3_000; step++) {
        const op = rand();
        if (op < 0.35) {
          const lane = lanes[int(lanes.length)]!;
          const u = { id: `u${serial++}`, lane: lane.id, pool: lane.pool };
          s.submit(u);
          queue.get(lane.id)!.push(u);
        } else if (op < 0.75) {
          const candidates = eligible();
          const service = new Map(lanes.map((l) => [l.id, s.laneCounters(l.id)?.service_ms ?? 0]));
          const u = s.dispatch();
          if (candidates.length === 0) {
            expect(u).toBeUndefined();
            continue;
          }
          expect(u).toBeDefined();
          const q = queue.get(u!.lane)!;
          expect(u).toBe(q[0]); // FIFO within the lane
          q.shift();
          const inPool = candidates.filter((l) => l.pool === u!.pool);
          const inFlight = (l: string) => running.filter((r) => r.lane === l).length;
          const key = (l: string) => [service.get(l)!, inFlight(l)] as const;
          const best = inPool.reduce((a, b) => {
            const [sa, ra] = key(a.id);
            const [sb, rb] = key(b.id);
            return sb < sa || (sb === sa && (rb < ra || (rb === ra && b.id < a.id))) ? b : a;
          });
          expect(u!.lane).toBe(best.id);
          running.push(u!);
          checks++;
        } else if (op < 0.97 && running.length > 0) {
          const [u] = running.splice(int(running.length), 1);
          const r = rand();
          const outcome = r < 0.1 ? 'retry' : r < 0.2 ? 'error' : 'success';
          s.complete(u!, int(50), outcome);
          if (outcome === 'retry') waiting.push(u!);
        } else if (waiting.length > 0) {
          const u = waiting.shift()!;
          s.submit(u);
          queue.get(u.lane)!.push(u);
        } else if (op > 0.995) {
          const lane = lanes[int(lanes.length)]!;
          expect(s.cancelLane(lane.id)).toEqual(queue.get(lane.id));
          queue.set(lane.id, []);
        }
        const snap = s.snapshot({ slowest: 0 });
        expect(snap.running).toBe(running.length);
        expect(snap.queued).toBe([...queue.values()].reduce((n, q) => n + q.length, 0));
        expect(snap.waiting).toBe(waiting.length);
        for (const p of poolNames) expect(snap.pools[p]!.running).toBeLessThanOrEqual(pools[p].slots);
        expect(snap.virtual_time_ms).toBeGreaterThanOrEqual(lastVt);
        lastVt = snap.virtual_time_ms;
      }
      expect(checks).toBeGreaterThan(300);
    });
  }
});
