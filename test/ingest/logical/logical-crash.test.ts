import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prng, testSeed } from '../../support/prng.ts';
import { openDuckdb, tempDuckdbPath, type OltpFixture, type OltpTemplate } from '../support/capture-fixture.ts';
import { templateOfFirstPractices } from '../support/capture-project.ts';
import { allDiffers } from './support/logical-fixture.ts';
import { workload } from './support/logical-workload.ts';

const CHILD = fileURLToPath(new URL('./support/logical-child.ts', import.meta.url));
const SEED = testSeed(20261203);
const KINDS = ['received', 'before-commit', 'after-commit', 'mid-apply'] as const;
const ROUNDS = 3;
const PROJECT = 'crash';

function runChild(url: string, path: string, tenants: readonly string[], kind: string, n: number): Promise<{ signal: NodeJS.Signals | null; code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, path, PROJECT, tenants.join(','), kind, String(n)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('kill-point')) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, out }));
  });
}

describe('log-based capture survives kill -9: raw equals the OLTP, nothing queued or applied twice', () => {
  let template: OltpTemplate;
  let tenants: string[];
  let oltp: OltpFixture;
  let file: { path: string; remove(): void };

  beforeAll(async () => {
    ({ template, tenants } = await templateOfFirstPractices(4, ['encounters', 'procedures'], { logical: {} }));
    oltp = await template.fresh();
    file = tempDuckdbPath();
  });
  afterAll(async () => {
    file?.remove();
    await oltp?.admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()`).catch(() => undefined);
    await oltp?.stop();
    await template?.stop();
  });

  it(`${KINDS.length * ROUNDS} kills (each kind of point, seeded: seed ${SEED}), the OLTP changing in between, then a clean run`, async () => {
    const rand = prng(SEED);
    const first = await runChild(oltp.url, file.path, tenants, 'none', 0);
    expect(first.out).toContain('done');
    let made = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of KINDS) {
        made += await workload(oltp.admin, oltp.url, tenants, rand, round * KINDS.length + KINDS.indexOf(kind));
        // Before the queue commit or on receipt: the second of a pair (its first is confirmed by
        // then), where confirming end + 1 would lose it; the other points anywhere in the first eight.
        const n = kind === 'before-commit' || kind === 'received' ? 2 * (1 + Math.floor(rand() * 3)) : 1 + Math.floor(rand() * 8);
        const r = await runChild(oltp.url, file.path, tenants, kind, n);
        const at = `seed ${SEED}, round ${round}: ${kind} #${n}`;
        expect(r.out, at).toContain(`kill-point ${kind} ${n}`);
        expect(r.signal, at).toBe('SIGKILL');
      }
    }
    const last = await runChild(oltp.url, file.path, tenants, 'none', 0);
    expect(last.out).toContain('done');
    const wh = await openDuckdb(file.path);
    try {
      expect(await allDiffers(oltp.admin, wh, tenants)).toEqual([]);
      const queued = await wh.query(`SELECT count(*) AS batches, count(DISTINCT lsn) AS distinct_lsn, sum(changes) AS changes FROM audit.queued`);
      // every source transaction queued exactly once
      expect(Number(queued.rows[0]!.batches)).toBe(made);
      expect(Number(queued.rows[0]!.distinct_lsn)).toBe(made);
      const applied = await wh.query(`SELECT count(*) AS n, count(DISTINCT source_table || '|' || tenant || '|' || pos) AS d FROM audit.applied`);
      // every queued change applied exactly once, and nothing left behind
      expect(Number(applied.rows[0]!.n)).toBe(Number(queued.rows[0]!.changes));
      expect(Number(applied.rows[0]!.d)).toBe(Number(applied.rows[0]!.n));
      expect(Number((await wh.query(`SELECT count(*) AS n FROM tsform_meta.logical_queue`)).rows[0]!.n)).toBe(0);
    } finally {
      await wh.close();
    }
  }, 600_000);
});
