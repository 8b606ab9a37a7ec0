import pg from 'pg';
import { startThrowawayPostgres } from '../test/support/postgres.ts';
const s = await startThrowawayPostgres();
const c = new pg.Client({ connectionString: s.url });
await c.connect();
try {
  await c.query('CREATE SCHEMA raw; CREATE TABLE raw.encounters (practice_id text, updated_at timestamptz)');
  const r = await c.query(`WITH "__tsf_this_stg_encounters" AS (SELECT * FROM "staging"."stg_encounters" WHERE "practice_id" = ANY($1::VARCHAR[])), src AS (SELECT * FROM raw.encounters WHERE practice_id = ANY($1::VARCHAR[])) SELECT * FROM src`, [['a']]);
  console.log('pg ok', r.rows);
} catch (e) { console.log('pg error:', (e as Error).message); }
await c.end();
await s.stop();
