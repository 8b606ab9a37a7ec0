import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { demoSourceColumns, generateFleet, REPO_ROOT, type FleetStats } from '../../scripts/lib/fleet-ehr.ts';
import { FLEET_TABLES } from '../../scripts/lib/fleet-rows.ts';
import { cli } from '../support/cli.ts';

// A tiny fleet: 20 practices, 1,500 encounters (Zipf: the largest ~420, the smallest ~21).
const SIZE = { practices: 20, encounters: 1500 };
const root = mkdtempSync(join(tmpdir(), 'tsform-fleet-gen-'));
const dirA = join(root, 'a');
const dirB = join(root, 'b');
const dirC = join(root, 'c');
let stats: FleetStats;

const files = (dir: string) => readdirSync(join(dir, 'data', 'ehr')).filter((f) => f.endsWith('.csv.gz')).sort();
const rowsOf = (dir: string, table: string) =>
  parse(gunzipSync(readFileSync(join(dir, 'data', 'ehr', `${table}.csv.gz`))), { columns: false }) as string[][];

beforeAll(async () => {
  stats = await generateFleet({ ...SIZE, seed: 7, out: dirA });
  await generateFleet({ ...SIZE, seed: 7, out: dirB });
  await generateFleet({ ...SIZE, seed: 8, out: dirC });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fleet:generate', () => {
  it('is deterministic: the same seed gives the same bytes, another seed other bytes', () => {
    expect(files(dirA)).toEqual(FLEET_TABLES.map((t) => `${t}.csv.gz`).sort());
    for (const f of [...files(dirA).map((f) => join('data', 'ehr', f)), 'tenants.yml']) {
      expect(readFileSync(join(dirB, f)).equals(readFileSync(join(dirA, f))), f).toBe(true);
      expect(readFileSync(join(dirC, f)).equals(readFileSync(join(dirA, f))), f).toBe(false);
    }
  });

  it('writes exactly the columns the demo declares, every row complete, ids unique per table', () => {
    const declared = demoSourceColumns(REPO_ROOT);
    const tenants = new Set((parseYaml(readFileSync(join(dirA, 'tenants.yml'), 'utf8')) as { tenants: { id: string }[] }).tenants.map((t) => t.id));
    for (const t of FLEET_TABLES) {
      const [header, ...rows] = rowsOf(dirA, t);
      expect(header, t).toEqual(declared[t]);
      expect(rows.length, t).toBe(stats.rows[t]);
      expect(rows.every((r) => r.length === header!.length), t).toBe(true);
      expect(rows.every((r) => tenants.has(r[0]!)), t).toBe(true);
      expect(new Set(rows.map((r) => r[1])).size, `${t} ids`).toBe(rows.length);
    }
    expect(stats.rows.encounters).toBeGreaterThanOrEqual(SIZE.encounters - SIZE.practices);
  });

  it('skews practice sizes, spreads time zones, and has persons at several practices', () => {
    const doc = parseYaml(readFileSync(join(dirA, 'tenants.yml'), 'utf8')) as { tenants: { id: string; timezone: string }[] };
    expect(doc.tenants).toHaveLength(SIZE.practices);
    expect(new Set(doc.tenants.map((t) => t.timezone)).size).toBeGreaterThanOrEqual(3);
    expect(stats.largest_practice_encounters).toBeGreaterThan(5 * stats.median_practice_encounters);
    // Same person: same birth date and name (the SSN may be missing at one practice).
    const [header, ...patients] = rowsOf(dirA, 'patients');
    const col = (n: string) => header!.indexOf(n);
    const practicesOf = new Map<string, Set<string>>();
    for (const r of patients) {
      const k = [r[col('birth_date')], r[col('last_name')], r[col('middle_name')]].join('|');
      practicesOf.set(k, (practicesOf.get(k) ?? new Set()).add(r[0]!));
    }
    const shared = [...practicesOf.values()].filter((s) => s.size > 1).length;
    expect(shared).toBeGreaterThan(0);
    expect(stats.persons).toBeLessThan(stats.rows.patients);
    // Encounters never precede the patient's birth.
    const births = new Map(patients.map((r) => [`${r[0]}|${r[1]}`, r[col('birth_date')]!]));
    const [eh, ...encounters] = rowsOf(dirA, 'encounters');
    const bad = encounters.filter((e) => e[eh!.indexOf('started_at')]!.slice(0, 10) < births.get(`${e[0]}|${e[2]}`)!);
    expect(bad.length).toBe(0);
  });

  it('refuses a non-empty output directory and bad sizes', async () => {
    await expect(generateFleet({ ...SIZE, seed: 7, out: dirA })).rejects.toThrow(/not empty/);
    await expect(generateFleet({ practices: 0, encounters: 10, seed: 1, out: join(root, 'd') })).rejects.toThrow(/--practices/);
    await expect(generateFleet({ practices: 5, encounters: 2, seed: 1, out: join(root, 'd') })).rejects.toThrow(/--encounters/);
  });

  it('is a project the real CLI compiles and runs, every node succeeding', async () => {
    const compiled = await cli('compile', '--project-dir', dirA);
    expect(compiled.code, compiled.err).toBe(0);
    const run = await cli('run', '--project-dir', dirA);
    expect(run.code, run.err.slice(-2000)).toBe(0);
    const summary = JSON.parse(run.out.filter((l) => l.includes('"event":"summary"')).at(-1)!) as { units: number; success: number; error: number };
    expect(summary.error).toBe(0);
    expect(summary.success).toBe(summary.units);
    // Every practice's rows were loaded and staged: counts equal the generated ones.
    const db = await DuckDBInstance.create(join(dirA, 'target', 'tsform.duckdb'), { access_mode: 'READ_ONLY' });
    const conn = await db.connect();
    try {
      for (const t of FLEET_TABLES) {
        const reader = await conn.runAndReadAll(`SELECT count(*)::INTEGER AS n, count(DISTINCT practice_id)::INTEGER AS p FROM staging.stg_${t}`);
        const [n, p] = reader.getRows()[0]!;
        expect(n, t).toBe(stats.rows[t]);
        if (t !== 'providers' && t !== 'patients') continue;
        expect(p, t).toBe(SIZE.practices);
      }
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });
});
