import { Codes, TsformError } from '../errors.ts';
import type { Tenant } from '../project/types.ts';

/**
 * Local dates and deadlines of the per-practice T+1 SLA (DESIGN §1 promise 4): every practice's
 * prior-day data lands before its own morning, in its own time zone. Pure: only `Intl`.
 *
 * Wall-clock times that do not exist or exist twice are resolved like Temporal's `compatible`
 * disambiguation, so the answer never depends on the machine's zone:
 * - gap (spring forward, e.g. 02:30 on 2026-03-08 in New York): the time is read with the offset
 *   in force before the change, which lands as far after the gap as it was into it (03:30 EDT);
 * - overlap (fall back, e.g. 01:30 on 2026-11-01 in New York): the earlier of the two instants
 *   (01:30 EDT), the first moment the practice's clocks show the deadline.
 */

export interface SlaDeadline {
  /** The practice's local yesterday (YYYY-MM-DD): the day whose data must be loaded. */
  dataDate: string;
  /** Today's `ready_by` in the practice's zone, as an instant. */
  deadline: Date;
}

const DAY_MS = 86_400_000;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

// Thousands of practices share a few (zone, ready_by) pairs: each deadline is resolved once a day.
const deadlines = new Map<string, number>();

/** The deadline in force at `now` and the data date it guards. */
export function slaDeadline(tenant: Pick<Tenant, 'timezone' | 'readyBy'>, now: Date): SlaDeadline {
  const today = localDateOf(now, tenant.timezone);
  const key = `${tenant.timezone}\u0000${tenant.readyBy}\u0000${today}`;
  let deadline = deadlines.get(key);
  if (deadline === undefined) {
    if (deadlines.size >= 10_000) deadlines.clear();
    deadlines.set(key, (deadline = zonedTimeToInstant(today, tenant.readyBy, tenant.timezone).getTime()));
  }
  return { dataDate: addDays(today, -1), deadline: new Date(deadline) };
}

/** The calendar date (YYYY-MM-DD) that clocks in `timeZone` show at `instant`. */
export function localDateOf(instant: Date, timeZone: string): string {
  const p = wallClock(instant, timeZone);
  return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}`;
}

/** The wall-clock time (HH:MM) that clocks in `timeZone` show at `instant`. */
export function localTimeOf(instant: Date, timeZone: string): string {
  const p = wallClock(instant, timeZone);
  return `${pad(p.hour)}:${pad(p.minute)}`;
}

/** The instant at which clocks in `timeZone` show `hhmm` on `localDate`; gaps and overlaps as above. */
export function zonedTimeToInstant(localDate: string, hhmm: string, timeZone: string): Date {
  const d = DATE.exec(localDate);
  const t = HHMM.exec(hhmm);
  if (!d) throw new TsformError(Codes.invalidSla, `'${localDate}' is not a date (YYYY-MM-DD)`);
  if (!t) throw new TsformError(Codes.invalidSla, `'${hhmm}' is not a local time (HH:MM)`);
  const wall = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]), Number(t[1]), Number(t[2]));
  // Offsets a day either side bracket any transition near this wall time (zones change at most
  // once in 48 hours); each offset proposes one instant, kept only if clocks really show `wall`.
  const before = offsetMs(wall - DAY_MS, timeZone);
  const after = offsetMs(wall + DAY_MS, timeZone);
  const valid = [wall - before, wall - after].filter((i) => wallMs(i, timeZone) === wall);
  if (valid.length > 0) return new Date(Math.min(...valid));
  return new Date(wall - before);
}

/** `date` (YYYY-MM-DD) plus `days` calendar days. */
export function addDays(date: string, days: number): string {
  const d = DATE.exec(date);
  if (!d) throw new TsformError(Codes.invalidSla, `'${date}' is not a date (YYYY-MM-DD)`);
  const t = new Date(Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]) + days));
  return t.toISOString().slice(0, 10);
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

// One formatter per zone: building an Intl.DateTimeFormat costs far more than using one, and a
// fleet of thousands of practices shares a handful of zones.
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new TsformError(Codes.invalidTimezone, `'${timeZone}' is not an IANA time zone`);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

function wallClock(instant: Date | number, timeZone: string): WallClock {
  const out: WallClock = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatterFor(timeZone).formatToParts(instant)) {
    if (part.type in out) out[part.type as keyof WallClock] = Number(part.value);
  }
  return out;
}

/** The wall clock at `instant`, read as if it were UTC, in ms (seconds resolution). */
function wallMs(instant: number, timeZone: string): number {
  const p = wallClock(instant, timeZone);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
}

/** Local minus UTC at `instant`, in ms (New York in winter: -5 h). */
function offsetMs(instant: number, timeZone: string): number {
  const whole = Math.floor(instant / 1000) * 1000;
  return wallMs(whole, timeZone) - whole;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}
