import type { SchedulerUnit } from '../../src/schedule/types.ts';
import { UnitQueue } from '../../src/schedule/unit-queue.ts';

/**
 * Today's runner as a dispatcher: one ready queue in submission order, `slots` workers, no
 * lanes or pools (src/execute/runner.ts before the fair scheduler).
 */
export class FifoDispatcher<U extends SchedulerUnit> {
  private readonly ready = new UnitQueue<U>();
  private running = 0;

  constructor(private readonly slots: number) {}

  submit(unit: U): void {
    this.ready.push(unit);
  }

  dispatch(): U | undefined {
    if (this.running >= this.slots) return undefined;
    const u = this.ready.shift();
    if (u) this.running++;
    return u;
  }

  complete(_unit: U, _elapsedMs: number): void {
    this.running--;
  }
}
