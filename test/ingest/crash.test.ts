import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureTenantSlice } from '../../src/ingest/capture.ts';
import { prng, testSeed } from '../support/prng.ts';
import { compareAll, demoSpecs, demoTenantIds, openDuckdb, startDemoOltp, tempDuckdbPath, type OltpFixture } from './support/capture-fixture.ts';

const CHILD = fileURLToPath(new URL('./support/capture-child.ts', import.meta.url));
const SEED = testSeed(20261202);
const KILLS = 20;
const CHUNK_ROWS = 150;
/**
 * Kill points are drawn from the first this-many chunks of a run (~1.5 s of capture here). Every
 * run has at least one chunk per practice per table (a practice that is caught up reads an
 * empty one), 221 in the first table alone, so every kill point drawn is reached; the seeded
 * first table spreads the kills over all tables.
 */
const MAX_KILL_CHUNK = 160;

/** Starts the capture child; kills it once it reports its kill point; resolves when it exits. */
function runChild(url: string, path: string, firstTable: number, killAt: number): Promise<{ signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, path, String(CHUNK_ROWS), String(firstTable), String(killAt)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      // the child goes on capturing after the line: the kill lands wherever it is by then
      if (out.includes('kill-point')) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (_code, signal) => resolve({ signal, out }));
  });
}

describe('capture survives kill -9', () => {
  let oltp: OltpFixture;
  let file: { path: string; remove(): void };

  beforeAll(async () => {
    oltp = await startDemoOltp();
    file = tempDuckdbPath();
  });
  afterAll(async () => {
    file?.remove();
    await oltp?.stop();
  });

  it(`${KILLS} kills at seeded chunk counts (seed ${SEED}; TSFORM_TEST_SEED replays another), edits in between, then a clean run: raw equals the OLTP, nothing lost or duplicated`, async () => {
    const tenants = demoTenantIds();
    const tables = demoSpecs().length;
    const rand = prng(SEED);
    for (let i = 0; i < KILLS; i++) {
      const firstTable = Math.floor(rand() * tables);
      const killAt = 1 + Math.floor(rand() * MAX_KILL_CHUNK);
      const r = await runChild(oltp.server.url, file.path, firstTable, killAt);
      const run = `seed ${SEED}, run ${i}: first table ${firstTable}, kill after chunk ${killAt}`;
      expect(r.out, run).toContain(`kill-point ${killAt}`);
      expect(r.signal, run).toBe('SIGKILL');
      expect(r.out, run).not.toMatch(/failures|Error/);
      if (i % 4 === 1) {
        // the OLTP keeps changing while capture keeps crashing
        const p = tenants[i]!;
        await oltp.admin.query(`UPDATE oltp.procedures SET description = description || ' *', updated_at = now() WHERE practice_id = $1`, [p]);
        await oltp.admin.query(`DELETE FROM oltp.medications WHERE practice_id = $1 AND medication_id IN (SELECT medication_id FROM oltp.medications WHERE practice_id = $1 LIMIT 2)`, [p]);
      }
    }
    const wh = await openDuckdb(file.path);
    try {
      for (const spec of demoSpecs()) {
        const r = await captureTenantSlice(wh, oltp.source, spec, tenants, { chunkRows: 5000, concurrency: 2 });
        expect(r.failures).toEqual([]);
      }
      expect(await compareAll(oltp.admin, wh, new Set(tenants))).toEqual([]);
      // no key twice in any practice's slice
      for (const spec of demoSpecs()) {
        const k = spec.key[0]!;
        const dup = await wh.query(`SELECT count(*) AS n FROM (SELECT practice_id, "${k}" FROM raw."${spec.table}" GROUP BY 1, 2 HAVING count(*) > 1) d`);
        expect(Number(dup.rows[0]!.n)).toBe(0);
      }
    } finally {
      await wh.close();
    }
  }, 600_000);
});
