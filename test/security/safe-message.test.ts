import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { raisedExecuting } from '../../src/adapters/error-statements.ts';
import { safeDbMessage } from '../../src/adapters/safe-message.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * The redactor on the engines' own messages: every error below is raised by DuckDB or PostgreSQL
 * with a marker value bound as a parameter (so it is in no statement text), and the line the
 * redactor makes of it is compared whole. A mismatch prints the redacted line only, which by then
 * holds no marker (asserted first).
 */

const NAME = 'Frederick289QXJV';
const NUMBER = 999359847;

const leaks = (line: string) => line.toUpperCase().includes('QXJV') || line.includes(String(NUMBER));

async function describeFailure(db: Adapter, sql: string, params: unknown[]): Promise<string> {
  return db.query(sql, params as never).then(
    () => 'no error',
    (err: unknown) => db.describeError(err),
  );
}

type Row = [label: string, sql: string, params: unknown[], expected: string];

const DUCKDB_ROWS: Row[] = [
  ['date cast', 'SELECT cast(v AS date) FROM (SELECT $1::VARCHAR AS v)', [NAME], 'Conversion Error: invalid date field format (value withheld)'],
  ['timestamp cast', 'SELECT cast(v AS timestamp) FROM (SELECT $1::VARCHAR AS v)', [NAME], 'Conversion Error: invalid timestamp field format (value withheld)'],
  ['time cast', 'SELECT cast(v AS time) FROM (SELECT $1::VARCHAR AS v)', [NAME], 'Conversion Error: time field value out of range (value withheld)'],
  ['integer cast', 'SELECT cast(v AS integer) FROM (SELECT $1::VARCHAR AS v)', [NAME], 'Conversion Error: Could not convert string to INT32 (value withheld)'],
  ['smallint from text', 'SELECT cast(v AS smallint) FROM (SELECT $1::VARCHAR AS v)', [String(NUMBER)], 'Conversion Error: Could not convert string to INT16 (value withheld)'],
  ['smallint from integer', 'SELECT cast(v AS smallint) FROM (SELECT $1::INTEGER AS v)', [NUMBER], 'Conversion Error: INT32 value out of range for the destination type INT16 (value withheld)'],
  ['decimal', 'SELECT cast(v AS decimal(4,2)) FROM (SELECT $1::INTEGER AS v)', [NUMBER], 'Conversion Error: Could not cast value to DECIMAL (value withheld)'],
  ['overflow', 'SELECT v * v FROM (SELECT $1::INTEGER AS v)', [NUMBER], 'Out of Range Error: Overflow in multiplication of INT32 (value withheld)'],
  ['make_date', 'SELECT make_date(v, 1, 1) FROM (SELECT $1::BIGINT AS v)', [NUMBER], 'Conversion Error: Date out of range (value withheld)'],
  ['strptime', "SELECT strptime(v, '%Y-%m-%d') FROM (SELECT $1::VARCHAR AS v)", [NAME], 'Invalid Input Error: Could not parse string according to format specifier (value withheld)'],
  ['json', "SELECT json_extract(v, '$.a') FROM (SELECT $1::VARCHAR AS v)", [NAME], 'Invalid Input Error: Malformed JSON (value withheld)'],
  ['json cast', 'SELECT cast(v AS json) FROM (SELECT $1::VARCHAR AS v)', [NAME], 'Conversion Error: Malformed JSON (value withheld)'],
  ['time zone', "SELECT timezone(v, timestamptz '2020-01-01 00:00:00+00') FROM (SELECT $1::VARCHAR AS v)", [NAME], 'Not implemented Error: Unknown TimeZone (value withheld)'],
  ['unit', "SELECT date_trunc(v, date '2020-01-01') FROM (SELECT $1::VARCHAR AS v)", [NAME], 'Conversion Error: extract specifier not recognized (value withheld)'],
  ['regex', "SELECT regexp_matches('a', v) FROM (SELECT $1::VARCHAR AS v)", [`(${NAME}`], 'Invalid Input Error: invalid regular expression (value withheld)'],
  ['base64', 'SELECT from_base64(v) FROM (SELECT $1::VARCHAR AS v)', [`${NAME}!`], 'Conversion Error: Could not decode string as base64 (value withheld)'],
  ['error()', 'SELECT error(v) FROM (SELECT $1::VARCHAR AS v)', [NAME], 'Invalid Input Error: (message withheld)'],
  // A raised message that imitates a stem or a location gets no word of its own through.
  ['error() as a stem', "SELECT error('Could not convert string x to ' || v) FROM (SELECT $1::VARCHAR AS v)", [NAME], 'Invalid Input Error: (message withheld)'],
  ['error() as a typed stem', "SELECT error('Could not convert string ' || v || ' to INT32') FROM (SELECT $1::VARCHAR AS v)", [NAME], 'Invalid Input Error: Could not convert string to INT32 (value withheld)'],
  ['error() as a CSV line', "SELECT error('CSV Error on Line: ' || v) FROM (SELECT $1::INTEGER AS v)", [NUMBER], 'Invalid Input Error: CSV Error (value withheld)'],
  ['error() with a location', "SELECT error('x' || chr(10) || 'LINE 1: ' || v) FROM (SELECT $1::VARCHAR AS v)", [NAME], 'Invalid Input Error: (message withheld)'],
  // json_each binds its path per row: a Binder Error (a kept type) quoting the value (red-team, 2026-12-07).
  ['json_each path', "SELECT j.key FROM (SELECT $1::VARCHAR AS v) AS t, json_each('{}', '$[''' || t.v || ']') AS j", [NAME], 'Binder Error: JSON path error (value withheld)'],
  ['json_each path with its own quote', "SELECT j.key FROM (SELECT $1::VARCHAR AS v) AS t, json_each('{}', '$[' || t.v || ']') AS j", [`O'${NAME}`], 'Binder Error: JSON path error (value withheld)'],
];

const POSTGRES_ROWS: Row[] = [
  ['date cast', 'SELECT cast($1::text AS date)', [NAME], '22007: invalid input syntax for type date (value withheld)'],
  ['integer cast', 'SELECT cast($1::text AS integer)', [NAME], '22P02: invalid input syntax for type integer (value withheld)'],
  ['smallint from text', 'SELECT cast($1::text AS smallint)', [String(NUMBER)], '22003: value out of range for type smallint (value withheld)'],
  ['smallint from integer', 'SELECT cast($1::integer AS smallint)', [NUMBER], '22003: smallint out of range (value withheld)'],
  ['to_date', "SELECT to_date($1::text, 'YYYY-MM-DD')", [NAME], '22007: invalid value for a format field (value withheld)'],
  ['to_date month', "SELECT to_date($1::text, 'DD-Mon-YYYY')", [`12-${NAME}-2000`], '22007: invalid value for a format field (value withheld)'],
  ['date overflow', 'SELECT make_date($1::integer, 1, 1)', [NUMBER], '22008: date out of range (value withheld)'],
  ['time zone', "SELECT timestamptz '2020-01-01 00:00:00+00' AT TIME ZONE $1::text", [NAME], '22023: time zone not recognized (value withheld)'],
  ['unit', "SELECT date_trunc($1::text, timestamptz '2020-01-01 00:00:00+00')", [NAME], '22023: unit not recognized for type timestamp with time zone (value withheld)'],
  ['json', 'SELECT $1::text::json', [NAME], '22P02: invalid input syntax for type json (value withheld)'],
  ['uuid', 'SELECT $1::text::uuid', [NAME], '22P02: invalid input syntax for type uuid (value withheld)'],
  ['regex', "SELECT regexp_match('a', $1::text)", [`(${NAME}`], '2201B: invalid regular expression (value withheld)'],
  ['chr', 'SELECT chr($1::integer)', [NUMBER], '54000: program limit exceeded (value withheld)'],
  ['regclass', 'SELECT $1::text::regclass', [NAME], '42P01: undefined table (name withheld)'],
  ['regclass dotted', 'SELECT $1::text::regclass', [`a.b.c.${NAME}`], '42601: syntax error (name withheld)'],
  ['regproc', 'SELECT $1::text::regproc', [NAME], '42883: undefined function (name withheld)'],
  ['regtype', 'SELECT $1::text::regtype', [NAME], '42704: undefined object (name withheld)'],
  ['regnamespace', 'SELECT $1::text::regnamespace', [NAME], '3F000: invalid schema name (name withheld)'],
  ['current_setting', 'SELECT current_setting($1::text)', [`x.${NAME}`], '42704: undefined object (name withheld)'],
  ['jsonpath', "SELECT jsonb_path_query('{}', $1::text::jsonpath)", [`${NAME} $`], '42601: syntax error (name withheld)'],
  // A type's input function parses a row's value as SQL: the position counts inside the value and
  // "at or near" quotes it (red-team, 2026-12-07); only a position the statement's text bears out is kept.
  ['regtypein', "SELECT regtypein(('x''' || $1::text)::cstring)", [NAME], '42601: syntax error (name withheld)'],
  ['regtypein, two words', 'SELECT regtypein(($1::text)::cstring)', [`Mary ${NAME}`], '42601: syntax error (name withheld)'],
  ['regprocedurein', "SELECT regprocedurein(('f(O''' || $1::text || ')')::cstring)", [NAME], '42601: syntax error (name withheld)'],
  ['regtypein at the end of the value', 'SELECT regtypein(($1::text)::cstring)', [`${NAME}(`], '42601: syntax error (name withheld)'],
  // A row type with a regtype field parses the field; the position counted the value's length,
  // and the statement holds the token it quotes ("x"): a CONTEXT says the position is not the statement's.
  [
    'a catalog row type with a regtype field',
    `SELECT (('(a,b,c,"int4' || repeat(' ', length($1::text)) || 'x",1,1,1,1,f,1,1)')::pg_sequences) IS NOT NULL /* x x x x x x x x x x x x x x x x x x x x x x */`,
    [NAME],
    '42601: syntax error (name withheld)',
  ],
  ['raise', 'SELECT tsf_unit_raise($1::text)', [NAME], 'P0001: raised by function tsf_unit_raise (message withheld)'],
  ['raise with a code', 'SELECT tsf_unit_raise_coded($1::text)', [NAME], '22023: raised by function tsf_unit_raise_coded (message withheld)'],
];

describe('safeDbMessage on DuckDB messages', () => {
  let db: DuckDBAdapter;
  beforeAll(async () => {
    db = await DuckDBAdapter.open({ path: ':memory:', connections: 1 });
  });
  afterAll(() => db?.close());

  it.each(DUCKDB_ROWS)('%s', async (_label, sql, params, expected) => {
    const line = await describeFailure(db, sql, params);
    expect(leaks(line)).toBe(false);
    expect(line).toBe(expected);
  });

  it('keeps the names of a statement that does not bind, with its location', async () => {
    expect(await describeFailure(db, 'SELECT nope FROM (SELECT 1 AS v)', [])).toBe(
      'Binder Error: Referenced column "nope" not found in FROM clause! | LINE 1: SELECT nope FROM (SELECT 1 AS v)',
    );
    expect(await describeFailure(db, 'SELECT * FROM no_such_table', [])).toMatch(/^Catalog Error: Table with name no_such_table does not exist!/);
    expect(await describeFailure(db, 'SELEC 1', [])).toBe('Parser Error: syntax error at or near "SELEC" | LINE 1: SELEC 1');
  });

  it('keeps the class of a constraint error and drops the duplicated key', async () => {
    await db.query('CREATE TABLE uniq (k VARCHAR PRIMARY KEY, n INTEGER NOT NULL)');
    await db.query('INSERT INTO uniq VALUES ($1, 1)', [NAME]);
    const dup = await describeFailure(db, 'INSERT INTO uniq VALUES ($1, 2)', [NAME]);
    expect(leaks(dup)).toBe(false);
    expect(dup).toBe('Constraint Error: PRIMARY KEY or UNIQUE constraint violation (value withheld)');
    expect(await describeFailure(db, 'INSERT INTO uniq VALUES ($1, NULL)', ['other'])).toBe('Constraint Error: NOT NULL constraint failed (value withheld)');
  });
});

describe('safeDbMessage on PostgreSQL messages', () => {
  let server: ThrowawayPostgres;
  let db: Adapter;
  beforeAll(async () => {
    server = await startThrowawayPostgres();
    db = await createPostgresAdapter({ url: server.url, poolSize: 1 });
    await db.query(`CREATE FUNCTION tsf_unit_raise(v text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused %', v; END $$`);
    await db.query(
      `CREATE FUNCTION tsf_unit_raise_coded(v text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'invalid input syntax for type integer: "%"', v USING ERRCODE = '22023'; END $$`,
    );
    // A function of tsform's own (security/templates.ts names it): its messages carry tickets and roles only.
    await db.query(`CREATE FUNCTION request_reidentification(v text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'a re-identification needs a reason of at least 8 characters' USING ERRCODE = 'invalid_parameter_value'; END $$`);
  });
  afterAll(async () => {
    await db?.close();
    await server?.stop();
  });

  it.each(POSTGRES_ROWS)('%s', async (_label, sql, params, expected) => {
    const line = await describeFailure(db, sql, params);
    expect(leaks(line)).toBe(false);
    expect(line).toBe(expected);
  });

  it('keeps names written in the statement (it has a position) and constraint names (the row is in DETAIL)', async () => {
    expect(await describeFailure(db, 'SELECT * FROM no_such_relation', [])).toBe('42P01: relation "no_such_relation" does not exist (at character 15)');
    expect(await describeFailure(db, "SELECT 'literal'::regclass", [])).toBe('42P01: relation "literal" does not exist (at character 8)');
    expect(await describeFailure(db, 'SELEC 1', [])).toBe('42601: syntax error at or near "SELEC" (at character 1)');
    await db.query('CREATE TABLE public.uniq (k text CONSTRAINT uniq_k UNIQUE)');
    await db.query('INSERT INTO public.uniq VALUES ($1)', [NAME]);
    const dup = await describeFailure(db, 'INSERT INTO public.uniq VALUES ($1)', [NAME]);
    expect(leaks(dup)).toBe(false);
    expect(dup).toBe('23505: duplicate key value violates unique constraint "uniq_k"');
  });

  it("keeps the message of tsform's own functions", async () => {
    expect(await describeFailure(db, 'SELECT request_reidentification($1)', [NAME])).toBe('22023: a re-identification needs a reason of at least 8 characters');
  });
});

describe('safeDbMessage on other errors', () => {
  it('cuts DETAIL and quoted input from an error of no engine, and handles non-errors', () => {
    expect(safeDbMessage(new Error(`something failed\nDETAIL: Key (ssn)=(${NAME}) already exists.`))).toBe('something failed');
    expect(safeDbMessage(new Error(`could not read '${NAME}'`))).toBe("could not read '…'");
    expect(safeDbMessage('plain')).toBe('plain');
    expect(safeDbMessage(undefined)).toBe('undefined');
  });

  it('withholds a DuckDB name error raised while the statement ran, and cuts a line at an unpaired quote', () => {
    // duckdb-adapter.ts marks what the prepared statement raised running: its names came from rows.
    expect(safeDbMessage(raisedExecuting(new Error(`Binder Error: Referenced column "${NAME}" not found`)))).toBe(
      'Binder Error: raised while the statement ran, from what a row gave (message withheld)',
    );
    expect(safeDbMessage(new Error(`Binder Error: Referenced column "${NAME}" not found`))).toBe(`Binder Error: Referenced column "${NAME}" not found`);
    expect(safeDbMessage(raisedExecuting(new Error('IO Error: could not write file')))).toBe('IO Error: could not write file');
    const unpaired = safeDbMessage(new Error(`Catalog Error: near '['${NAME}]'`));
    expect(leaks(unpaired)).toBe(false);
    expect(unpaired).toBe('Catalog Error: near …');
  });

  it('withholds sizes and indexes of DuckDB memory and internal errors', () => {
    expect(safeDbMessage(new Error('Out of Memory Error: failed to allocate data of size 953.0 MiB (1.2 GiB/1.5 GiB used)'))).toBe(
      'Out of Memory Error: could not allocate memory (value withheld)',
    );
    expect(safeDbMessage(new Error(`INTERNAL Error: Attempted to access index ${NUMBER} within vector of size 3`))).toBe('INTERNAL Error: (message withheld)');
  });

  it("reads node's errno codes as no SQLSTATE", () => {
    expect(safeDbMessage(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toBe('write EPIPE');
  });

  it('withholds the message of an unknown SQLSTATE class, and of an internal error', () => {
    expect(safeDbMessage(Object.assign(new Error(`case not found for ${NAME}`), { code: '20000' }))).toBe('20000: error of class 20 (value withheld)');
    expect(safeDbMessage(Object.assign(new Error(`invalid memory alloc request size ${NUMBER}`), { code: 'XX000' }))).toBe('XX000: internal error (value withheld)');
  });
});
