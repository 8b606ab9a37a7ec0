import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureTenantSlice } from '../../src/ingest/capture.ts';
import { compareAll, demoSpecs, demoTenantIds, openDuckdb, startDemoOltp, tempDuckdbPath, type OltpFixture } from './support/capture-fixture.ts';

const CHILD = fileURLToPath(new URL('./support/capture-child.ts', import.meta.url));

/** Starts the capture child; resolves when it exits (killed or not) with what it printed. */
function runChild(url: string, path: string, killAfterMs: number | undefined): Promise<{ signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, path, '150'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // the clock starts once the child has opened both databases, so kills land in the capture
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', () => {
      if (killAfterMs !== undefined && !timer && out.includes('ready')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      resolve({ signal, out });
    });
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

  it('20 kills at random moments, edits in between, then a clean run: raw equals the OLTP, nothing lost or duplicated', async () => {
    const tenants = demoTenantIds();
    let killed = 0;
    for (let i = 0; i < 20; i++) {
      // a full capture takes ~15 s here; kills spread from right after start to well into it
      const r = await runChild(oltp.server.url, file.path, 50 + Math.floor(Math.random() * 1500));
      if (r.signal === 'SIGKILL') killed++;
      expect(r.out).not.toMatch(/failures|Error/);
      if (i % 4 === 1) {
        // the OLTP keeps changing while capture keeps crashing
        const p = tenants[i]!;
        await oltp.admin.query(`UPDATE oltp.procedures SET description = description || ' *', updated_at = now() WHERE practice_id = $1`, [p]);
        await oltp.admin.query(`DELETE FROM oltp.medications WHERE practice_id = $1 AND medication_id IN (SELECT medication_id FROM oltp.medications WHERE practice_id = $1 LIMIT 2)`, [p]);
      }
    }
    expect(killed).toBeGreaterThanOrEqual(15);
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
