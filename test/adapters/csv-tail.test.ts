import { describe, expect, it } from 'vitest';
import { lastCsvRow } from '../../src/adapters/duckdb/csv-tail.ts';

/** What COPY ... WITH (FORMAT csv, NULL '\N', FORCE_QUOTE *) writes for these rows. */
function copyCsv(rows: (string | null)[][]): Buffer {
  return Buffer.from(rows.map((r) => `${r.map((v) => (v === null ? '\\N' : `"${v.replaceAll('"', '""')}"`)).join(',')}\n`).join(''));
}

describe('last row of COPY CSV output', () => {
  const tricky: (string | null)[][] = [
    ['a', '', null, '\\N'],
    ['"', '""', ',"', '"\n"'],
    ['x,\n"y"', 'line\nbreak,', '"', 'ünïcødé "q"'],
    [null, null, '', ','],
    ['"",""', '\n', '",\n"', '"x"'],
  ];

  it('reads back every field of the last row: quotes, commas, newlines, empty strings, \\N text and NULL', () => {
    for (let i = 0; i < tricky.length; i++) {
      const buf = copyCsv(tricky.slice(0, i + 1));
      expect(lastCsvRow(buf, 4, true)).toEqual(tricky[i]);
    }
  });

  it('answers undefined when the bytes kept start inside the last row, and the row once they reach its start', () => {
    const buf = copyCsv(tricky);
    const last = copyCsv([tricky.at(-1)!]).length;
    for (let keep = 1; keep < last; keep++) expect(lastCsvRow(buf.subarray(buf.length - keep), 4, false)).toBeUndefined();
    expect(lastCsvRow(buf.subarray(buf.length - last - 1), 4, false)).toEqual(tricky.at(-1));
    expect(lastCsvRow(buf.subarray(buf.length - last), 4, true)).toEqual(tricky.at(-1));
  });

  it('refuses output that is not what COPY promised', () => {
    expect(() => lastCsvRow(Buffer.from('"a","b"'), 2, true)).toThrow(/newline/);
    expect(() => lastCsvRow(Buffer.from('"a","b"\n'), 3, true)).toThrow(/2 values for 3 columns/);
    expect(() => lastCsvRow(Buffer.from('"a",b\n'), 2, true)).toThrow(/neither quoted nor NULL/);
  });
});
