import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { countDeletion } from '../../src/warehouse/deletion-epochs.ts';
import { DELETION_EPOCHS, migrateMeta } from '../../src/warehouse/meta-schema.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * Deletion epochs counted at once by two transactions (two practices' chunks both removing a row
 * that moved away from one practice): both count, neither fails. On PostgreSQL an UPDATE then an
 * INSERT … WHERE NOT EXISTS let the second insert too, and it failed for good with 23505.
 */

const META = 'tsform_meta';
let pgServer: ThrowawayPostgres;
let dir: string;

beforeAll(async () => {
  pgServer = await startThrowawayPostgres();
  dir = mkdtempSync(join(tmpdir(), 'tsform-epochs-'));
});
afterAll(async () => {
  await pgServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const epochs = async (a: Adapter) =>
  (await a.query(`SELECT tenant, epoch FROM ${META}.${DELETION_EPOCHS.name} WHERE relation = 'raw.encounters' ORDER BY tenant`)).rows.map((r) => [String(r.tenant), Number(r.epoch)]);

describe.each(['postgres', 'duckdb'] as const)('deletion epochs on %s', (kind) => {
  it('two transactions counting the same practice at once both count, and a list may repeat a practice', async () => {
    const a: Adapter = kind === 'postgres' ? await createPostgresAdapter({ url: pgServer.url, poolSize: 3 }) : await DuckDBAdapter.open({ path: join(dir, 'w.duckdb'), connections: 3 });
    try {
      await migrateMeta(a, META);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let counted!: () => void;
      const firstCounted = new Promise<void>((r) => (counted = r));
      const first = a.transaction(async (s) => {
        await countDeletion(s, META, 'raw.encounters', ['p1', 'p2', 'p1']);
        counted();
        await held;
      });
      await firstCounted;
      // The second starts while the first holds its uncommitted row, then the first commits.
      const second = a.transaction((s) => countDeletion(s, META, 'raw.encounters', ['p1']));
      await new Promise((r) => setTimeout(r, 200));
      release();
      const outcomes = await Promise.allSettled([first, second]);
      const work = [['p1', 'p2', 'p1'], ['p1']];
      if (kind === 'duckdb') {
        // DuckDB reports the conflict (to either side) instead of waiting; the runner retries it.
        for (const [i, o] of outcomes.entries()) {
          if (o.status === 'fulfilled') continue;
          expect(a.classifyError(o.reason)).toBe('transient');
          await a.transaction((s) => countDeletion(s, META, 'raw.encounters', work[i]!));
        }
      } else {
        expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
      }
      expect(await epochs(a)).toEqual([
        ['p1', 2],
        ['p2', 1],
      ]);
    } finally {
      await a.close();
    }
  });
});
