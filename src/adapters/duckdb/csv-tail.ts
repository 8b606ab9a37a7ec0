const QUOTE = 0x22;
const COMMA = 0x2c;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
const N = 0x4e;

/**
 * The fields of the last row of PostgreSQL's COPY CSV output written with `FORCE_QUOTE *` and
 * `NULL '\N'` (every value quoted, NULL a bare `\N`), read backwards from the end of `buf`,
 * which must end with the row's newline. `undefined` when `buf` starts inside that row (the
 * caller keeps too few bytes and must look further back).
 *
 * Reading backwards is unambiguous for this output: inside a quoted value a quote only occurs
 * doubled, and a value's opening quote follows a comma, a newline or the start of the output,
 * so in every run of quotes the parity says which quote opens the value. With `startsAtRow`
 * (`buf` is the whole output), a row that does not parse as exactly `width` fields throws (the
 * output is not what COPY promised).
 */
export function lastCsvRow(buf: Buffer, width: number, startsAtRow: boolean): (string | null)[] | undefined {
  if (startsAtRow) return readLastRow(buf, width, true);
  // Cut somewhere before the last row's end: the backward read is the same as on the whole
  // output until it runs into the cut, where it may fail; the whole output then decides.
  try {
    return readLastRow(buf, width, false);
  } catch {
    return undefined;
  }
}

function readLastRow(buf: Buffer, width: number, startsAtRow: boolean): (string | null)[] | undefined {
  if (buf.length === 0 || buf[buf.length - 1] !== NEWLINE) throw new Error('COPY CSV output does not end with a newline');
  const fields: (string | null)[] = [];
  let end = buf.length - 1; // exclusive end of the field being read
  for (;;) {
    let start: number;
    if (end >= 2 && buf[end - 1] === N && buf[end - 2] === BACKSLASH && isBoundary(buf, end - 3)) {
      fields.push(null);
      start = end - 2;
    } else {
      if (end < 1 || buf[end - 1] !== QUOTE) throw new Error('COPY CSV output: a value is neither quoted nor NULL');
      // end - 1 is the closing quote; walk back over the value to its opening quote.
      let i = end - 2;
      for (;;) {
        if (i < 0) return undefined;
        if (buf[i] !== QUOTE) {
          i--;
          continue;
        }
        let run = 0;
        while (i - run >= 0 && buf[i - run] === QUOTE) run++;
        if (i - run < 0 && !startsAtRow) return undefined;
        if (run % 2 === 1) {
          // the first quote of an odd run opens the value; the rest are doubled quotes
          const open = i - run + 1;
          if (!isBoundary(buf, open - 1)) throw new Error('COPY CSV output: a quoted value is not preceded by a separator');
          fields.push(buf.toString('utf8', open + 1, end - 1).replaceAll('""', '"'));
          start = open;
          break;
        }
        i -= run;
      }
    }
    if (start === 0) {
      if (!startsAtRow) return undefined;
      break;
    }
    const sep = buf[start - 1];
    if (sep === NEWLINE) break;
    if (sep !== COMMA) throw new Error('COPY CSV output: unexpected byte between values');
    end = start - 1;
    if (fields.length > width) break;
  }
  if (fields.length !== width) throw new Error(`COPY CSV output: the last row has ${fields.length} values for ${width} columns`);
  return fields.reverse();
}

/** Whether position `i` (possibly -1, the start of the output) ends a field or a row. */
function isBoundary(buf: Buffer, i: number): boolean {
  return i < 0 || buf[i] === COMMA || buf[i] === NEWLINE;
}
