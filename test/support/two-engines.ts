import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from './postgres.ts';

export interface Engine {
  name: string;
  adapter(): Adapter;
}

/**
 * A DuckDB file in a temp folder and a throwaway PostgreSQL, opened before the file's tests and
 * closed after them, for `describe.each(twoEngines(...))`.
 */
export function twoEngines(prefix: string): Engine[] {
  let dir: string;
  let duck: DuckDBAdapter;
  let server: ThrowawayPostgres;
  let pg: Adapter;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `tsform-${prefix}-`));
    duck = await DuckDBAdapter.open({ path: join(dir, `${prefix}.duckdb`), connections: 2 });
    server = await startThrowawayPostgres();
    pg = await createPostgresAdapter({ url: server.url, poolSize: 2 });
  }, 120_000);
  afterAll(async () => {
    await duck?.close();
    await pg?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return [
    { name: 'duckdb', adapter: () => duck },
    { name: 'postgres', adapter: () => pg },
  ];
}
