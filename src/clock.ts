/**
 * The one source of the current time (issue 18). Every stage that reads the time takes a `Clock`
 * from its caller; only this module and cli/ (which creates the system clock) read the machine's
 * clock. A test injects `fixedClock`, so run-history windows, loaded-through dates, SLA deadlines,
 * alert and audit timestamps all agree on one instant whatever the calendar says. Durations are
 * not the time of day: they are measured with `performance.now()`, which is monotonic.
 */
export interface Clock {
  /** The current instant. */
  now(): Date;
}

/** The machine's clock: what a real run uses. */
export const systemClock: Clock = { now: () => new Date() };

/** Always the same instant (tests, replays). */
export function fixedClock(at: Date | string): Clock {
  const ms = (typeof at === 'string' ? new Date(at) : at).getTime();
  if (Number.isNaN(ms)) throw new RangeError(`fixedClock: '${String(at)}' is not an instant`);
  return { now: () => new Date(ms) };
}

/** Starts at `at` and moves only when told (tests that need time to pass). */
export class ManualClock implements Clock {
  private ms: number;
  constructor(at: Date | string) {
    this.ms = fixedClock(at).now().getTime();
  }
  now(): Date {
    return new Date(this.ms);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** `ms` before `clock.now()`, as an ISO instant (windows over history). */
export function isoBefore(clock: Clock, ms: number): string {
  return new Date(clock.now().getTime() - ms).toISOString();
}
