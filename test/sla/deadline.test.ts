import { describe, expect, it } from 'vitest';
import { TsformError } from '../../src/errors.ts';
import { addDays, localDateOf, localTimeOf, slaDeadline, zonedTimeToInstant } from '../../src/sla/deadline.ts';

const at = (iso: string) => new Date(iso);
const practice = (timezone: string, readyBy = '06:00') => ({ timezone, readyBy });

describe('slaDeadline: T+1 in the practice’s own zone', () => {
  it.each([
    // zone, ready_by, now, expected data date, expected deadline
    ['America/New_York', '06:00', '2026-11-28T11:30:00Z', '2026-11-27', '2026-11-28T11:00:00.000Z'],
    // 22:00 on the 27th in New York, already the 28th in UTC: the local day counts
    ['America/New_York', '06:00', '2026-11-28T03:00:00Z', '2026-11-26', '2026-11-27T11:00:00.000Z'],
    ['America/Los_Angeles', '06:00', '2026-11-28T11:30:00Z', '2026-11-27', '2026-11-28T14:00:00.000Z'],
    ['Pacific/Honolulu', '06:00', '2026-11-28T11:30:00Z', '2026-11-27', '2026-11-28T16:00:00.000Z'],
    ['Pacific/Honolulu', '06:00', '2026-11-28T09:00:00Z', '2026-11-26', '2026-11-27T16:00:00.000Z'],
    ['America/Phoenix', '06:00', '2026-03-08T12:00:00Z', '2026-03-07', '2026-03-08T13:00:00.000Z'],
    ['America/Phoenix', '06:00', '2026-07-01T12:00:00Z', '2026-06-30', '2026-07-01T13:00:00.000Z'],
    ['Europe/London', '06:00', '2026-01-15T03:00:00Z', '2026-01-14', '2026-01-15T06:00:00.000Z'],
    ['Europe/London', '06:00', '2026-07-15T03:00:00Z', '2026-07-14', '2026-07-15T05:00:00.000Z'],
    ['Asia/Kathmandu', '06:00', '2026-01-15T00:00:00Z', '2026-01-14', '2026-01-15T00:15:00.000Z'],
    // a year boundary in the practice's zone, not in UTC
    ['America/Chicago', '07:00', '2027-01-01T03:00:00Z', '2026-12-30', '2026-12-31T13:00:00.000Z'],
  ])('%s ready by %s at %s → data %s, deadline %s', (zone, readyBy, now, dataDate, deadline) => {
    const d = slaDeadline(practice(zone, readyBy), at(now));
    expect(d.dataDate).toBe(dataDate);
    expect(d.deadline.toISOString()).toBe(deadline);
  });

  describe('America/New_York, spring forward on 2026-03-08 (02:00 EST → 03:00 EDT)', () => {
    it('uses EDT for the morning after the change and EST the day before', () => {
      expect(slaDeadline(practice('America/New_York'), at('2026-03-08T05:30:00Z'))).toEqual({
        dataDate: '2026-03-07',
        deadline: at('2026-03-08T10:00:00Z'),
      });
      expect(slaDeadline(practice('America/New_York'), at('2026-03-07T12:00:00Z')).deadline.toISOString()).toBe('2026-03-07T11:00:00.000Z');
    });

    it('a ready_by inside the gap (02:30) lands as far past it: 03:30 EDT', () => {
      const d = slaDeadline(practice('America/New_York', '02:30'), at('2026-03-08T05:30:00Z'));
      expect(d.deadline.toISOString()).toBe('2026-03-08T07:30:00.000Z');
      expect(localTimeOf(d.deadline, 'America/New_York')).toBe('03:30');
    });
  });

  describe('America/New_York, fall back on 2026-11-01 (02:00 EDT → 01:00 EST)', () => {
    it('uses EST for the morning after the change', () => {
      expect(slaDeadline(practice('America/New_York'), at('2026-11-01T05:30:00Z'))).toEqual({
        dataDate: '2026-10-31',
        deadline: at('2026-11-01T11:00:00Z'),
      });
    });

    it('a ready_by in the repeated hour (01:30) is its first occurrence, 01:30 EDT', () => {
      expect(zonedTimeToInstant('2026-11-01', '01:30', 'America/New_York').toISOString()).toBe('2026-11-01T05:30:00.000Z');
      // both 05:30Z and 06:30Z show 01:30 on the clock
      expect(localTimeOf(at('2026-11-01T06:30:00Z'), 'America/New_York')).toBe('01:30');
    });
  });

  describe('Europe/London', () => {
    it('BST starts 2026-03-29 at 01:00: 06:00 is 05:00Z, the gap time 01:30 becomes 02:30 BST', () => {
      expect(zonedTimeToInstant('2026-03-28', '06:00', 'Europe/London').toISOString()).toBe('2026-03-28T06:00:00.000Z');
      expect(zonedTimeToInstant('2026-03-29', '06:00', 'Europe/London').toISOString()).toBe('2026-03-29T05:00:00.000Z');
      expect(zonedTimeToInstant('2026-03-29', '01:30', 'Europe/London').toISOString()).toBe('2026-03-29T01:30:00.000Z');
    });

    it('BST ends 2026-10-25 at 02:00: the repeated 01:30 is the BST one', () => {
      expect(zonedTimeToInstant('2026-10-25', '01:30', 'Europe/London').toISOString()).toBe('2026-10-25T00:30:00.000Z');
      expect(zonedTimeToInstant('2026-10-25', '06:00', 'Europe/London').toISOString()).toBe('2026-10-25T06:00:00.000Z');
    });
  });

  it('Pacific/Honolulu and America/Phoenix keep one offset all year', () => {
    for (const day of ['2026-01-15', '2026-03-08', '2026-07-01', '2026-11-01']) {
      expect(zonedTimeToInstant(day, '06:00', 'Pacific/Honolulu').toISOString()).toBe(`${day}T16:00:00.000Z`);
      expect(zonedTimeToInstant(day, '06:00', 'America/Phoenix').toISOString()).toBe(`${day}T13:00:00.000Z`);
    }
  });

  it('every day of 2026, in every zone: the deadline shows ready_by on that local day, first occurrence, except in a gap', () => {
    const zones = ['America/New_York', 'America/Chicago', 'America/Boise', 'America/Los_Angeles', 'America/Phoenix', 'Pacific/Honolulu', 'Europe/London', 'Australia/Lord_Howe', 'Asia/Kathmandu'];
    const gaps: string[] = [];
    for (const zone of zones) {
      for (const readyBy of ['00:00', '01:30', '02:15', '02:30', '06:00', '23:59']) {
        for (let day = '2026-01-01'; day < '2027-01-01'; day = addDays(day, 1)) {
          const d = zonedTimeToInstant(day, readyBy, zone);
          expect(localDateOf(d, zone)).toBe(day);
          const shown = localTimeOf(d, zone);
          if (shown !== readyBy) {
            gaps.push(`${zone} ${day} ${readyBy}→${shown}`);
            expect(shown > readyBy).toBe(true);
          }
          // no earlier instant (by 30 or 60 min: every DST shift here) shows the same time that day
          for (const back of [30, 60]) {
            const earlier = new Date(d.getTime() - back * 60_000);
            expect(localDateOf(earlier, zone) === day && localTimeOf(earlier, zone) === readyBy).toBe(false);
          }
        }
      }
    }
    expect(gaps).toEqual([
      'America/New_York 2026-03-08 02:15→03:15',
      'America/New_York 2026-03-08 02:30→03:30',
      'America/Chicago 2026-03-08 02:15→03:15',
      'America/Chicago 2026-03-08 02:30→03:30',
      'America/Boise 2026-03-08 02:15→03:15',
      'America/Boise 2026-03-08 02:30→03:30',
      'America/Los_Angeles 2026-03-08 02:15→03:15',
      'America/Los_Angeles 2026-03-08 02:30→03:30',
      'Europe/London 2026-03-29 01:30→02:30',
      // Lord Howe moves by 30 minutes, 02:00 → 02:30, on 2026-10-04
      'Australia/Lord_Howe 2026-10-04 02:15→02:45',
    ]);
  });

  it('rejects an unknown zone with TSF107 and a malformed time with TSF108', () => {
    expect(() => slaDeadline(practice('Mars/Olympus_Mons'), at('2026-11-28T00:00:00Z'))).toThrowError(
      expect.objectContaining({ code: 'TSF107' }) as unknown as Error,
    );
    expect(() => slaDeadline(practice('UTC', '6am'), at('2026-11-28T00:00:00Z'))).toThrow(TsformError);
  });

  it('addDays crosses months, years and leap days', () => {
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
    expect(addDays('2028-03-01', -1)).toBe('2028-02-29');
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
  });
});
