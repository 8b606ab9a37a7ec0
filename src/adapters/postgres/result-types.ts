import pg from 'pg';

// How the PostgreSQL adapter's pools parse result values, so that rows read the same as DuckDB's.

const OID = {
  int8: 20,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  numeric: 1700,
  textArray: 1009,
  int8Array: 1016,
  dateArray: 1182,
  timestampArray: 1115,
  timestamptzArray: 1185,
  intervalArray: 1187,
  numericArray: 1231,
} as const;

type TypeId = Parameters<typeof pg.types.getTypeParser>[0];
const parseTextArray = pg.types.getTypeParser(OID.textArray as TypeId, 'text') as (text: string) => (string | null)[];

function arrayOf(parse: (text: string) => unknown): (text: string) => unknown[] {
  return (text) => parseTextArray(text).map((v) => (v === null ? null : parse(v)));
}

function parseInt8(text: string): number | string {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
}

/** Same shape as the DuckDB adapter: `Date.toISOString()`; a timestamp without zone is UTC. */
function parseTimestamp(text: string): string {
  let iso = text.replace(' ', 'T');
  const offset = /([+-]\d\d)(?::?(\d\d))?$/.exec(iso);
  if (offset && /T\d\d:\d\d:\d\d/.test(iso.slice(0, offset.index))) iso = `${iso.slice(0, offset.index)}${offset[1]}:${offset[2] ?? '00'}`;
  else iso = `${iso}Z`;
  const d = new Date(iso);
  // infinity, BC dates and years past 9999 keep PostgreSQL's own text
  return Number.isNaN(d.getTime()) ? text : d.toISOString();
}

const identity = (text: string): string => text;

/**
 * Per-pool result parsers (the global `pg.types` is left alone): int8 as a number while it is a
 * safe integer, numeric and interval as text, dates as 'YYYY-MM-DD' (never a local-time Date),
 * timestamps as ISO-8601 strings in UTC.
 */
const TEXT_PARSERS: ReadonlyMap<number, (text: string) => unknown> = new Map<number, (text: string) => unknown>([
  [OID.int8, parseInt8],
  [OID.numeric, identity],
  [OID.date, identity],
  [OID.interval, identity],
  [OID.timestamp, parseTimestamp],
  [OID.timestamptz, parseTimestamp],
  [OID.int8Array, arrayOf(parseInt8)],
  [OID.numericArray, arrayOf(identity)],
  [OID.dateArray, arrayOf(identity)],
  [OID.intervalArray, arrayOf(identity)],
  [OID.timestampArray, arrayOf(parseTimestamp)],
  [OID.timestamptzArray, arrayOf(parseTimestamp)],
]);

export const RESULT_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    const own = format === 'binary' ? undefined : TEXT_PARSERS.get(oid);
    return own ?? pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};
