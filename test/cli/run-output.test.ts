import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBInstance } from '@duckdb/node-api';
import { readRunResults, toRunResultsFile } from '../../src/artifacts/run-results-file.ts';
import type { NodeResult, RunResults } from '../../src/artifacts/run-results.ts';
import { summarizeTenants } from '../../src/artifacts/run-results.ts';
import { cli } from '../support/cli.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { SSN_PATTERN } from '../support/research-fixture.ts';

/**
 * Issue 15 items 6, 7 and 11 through the CLI on a copy of the demo project: a first run with a
 * model that fails for every practice. What a person sees (a line per node, one error at the
 * model's line, alerts in words), and what it leaves in target/ (a compact run_results.json, a
 * log file, pasteable compiled SQL and tests).
 */

// Line 8 names a column the input does not have.
const BROKEN = ['-- Visits per practice and class.', 'with e as (', '  select * from {{ref "stg_encounters"}}', ')', 'select', '  practice_id,', '  encounter_class,', '  count(distinct no_such_column) as n', 'from e', 'group by 1, 2', ''].join('\n');

describe('a first run with a failing model, in text mode', () => {
  let demo: DemoCopy;
  let run: Awaited<ReturnType<typeof cli>>;
  beforeAll(async () => {
    demo = copyDemoProject({
      tenants: (ids) => [...ids].sort().slice(0, 3),
      files: { 'models/marts/broken.sql': BROKEN, 'tests/bad_check.sql': 'select practice_id\nfrom {{ref "practice_daily_activity"}}\nwhere no_such_col > 0\n' },
    });
    run = await cli('build', '--project-dir', demo.dir, '--log-format', 'text', '--full-results');
  }, 240_000);
  afterAll(() => demo?.remove());

  it('prints a line per node, not per practice or batch', () => {
    expect(run.code, run.out.join('\n')).toBe(1);
    const nodeLines = run.out.filter((l) => /^\s*\d+ of \d+ (OK|ERROR|SKIP)\s/.test(l));
    const total = Number(/ of (\d+) /.exec(nodeLines[0]!)![1]);
    expect(nodeLines).toHaveLength(total);
    expect(nodeLines.find((l) => l.includes(' broken '))).toMatch(/ERROR\s+table model broken \.+ 3 practices: 0 ok, 3 failed/);
    expect(run.out.some((l) => /@p_|practice\(s\)\]/.test(l))).toBe(false);
  });

  it('reports the SQL error once, at the model line with a caret, with the number of practices', () => {
    const all = run.out.join('\n');
    expect(all).toContain('models/marts/broken.sql:8:18: Binder Error');
    expect(all).toContain('  8 |   count(distinct no_such_column) as n\n    |                  ^');
    expect(all).not.toMatch(/LINE \d+:/);
    expect(run.out.filter((l) => l.startsWith('✗ broken failed for 3 practices'))).toHaveLength(1);
  });

  it('a data test that cannot run names its file and the line of its compiled SQL, not the statement\'s LINE n', () => {
    const line = run.out.find((l) => l.startsWith('✗ test:bad_check failed for 3 practices'));
    const m = /tests\/bad_check\.sql:1: test bad_check could not run: Binder Error: .* \(target\/compiled\/tests\/bad_check\.sql:(\d+)\)$/.exec(line ?? '');
    expect(m, line).not.toBeNull();
    const compiled = readFileSync(join(demo.dir, 'target/compiled/tests/bad_check.sql'), 'utf8').split('\n');
    expect(compiled[Number(m![1]) - 1]).toContain('no_such_col');
  });

  it('sums alerts up in words; no alert JSON on the terminal; a first run pages nobody for never-loaded practices', () => {
    const everything = `${run.out.join('\n')}\n${run.err}`;
    expect(everything).not.toContain('{"event":"alert"');
    expect(everything).not.toMatch(/never loaded|sla_late/);
    expect(run.out.filter((l) => l.startsWith('alerts: '))).toEqual([expect.stringMatching(/^alerts: node_failed .* for 3 practices \(/)]);
  });

  it('writes target/tsform.log: the command, every unit, the alerts as JSON, the totals; no PHI', () => {
    const log = readFileSync(join(demo.dir, 'target/tsform.log'), 'utf8');
    expect(log).toMatch(/\[info\] tsform build --project-dir .* --log-format text/);
    expect(log).toMatch(/\[error\] broken@p_\w+ error rows=- ms=\d+ code=TSF401 models\/marts\/broken\.sql:8:18/);
    expect(log).toMatch(/\[debug\] stg_encounters@p_\w+ success rows=\d+/);
    expect(log.match(/\[warn\] \{"event":"alert","kind":"node_failed"/g)).toHaveLength(3);
    expect(log).toMatch(/\[info\] \d+ units = /);
    expect(SSN_PATTERN.test(log)).toBe(false);
    expect(statSync(join(demo.dir, 'target/tsform.log')).mode & 0o077).toBe(0);
  });

  it('run_results.json is grouped per node, lists only what did not succeed, and reads back to every unit', () => {
    const text = readFileSync(join(demo.dir, 'target/run_results.json'), 'utf8');
    const doc = JSON.parse(text) as { schema_version: number; results: NodeResult[]; tenants: Record<string, unknown>; nodes: { node: string; counts: Record<string, number> }[] };
    expect(doc.schema_version).toBe(2);
    // Version 1's fields keep their shape: results (now only what did not succeed) and every practice in tenants.
    expect(doc.results.filter((r) => r.model === 'broken').map((r) => [r.node, r.status, r.code]).sort()).toEqual(demo.tenantIds.map((t) => [`broken@${t}`, 'error', 'TSF401']).sort());
    expect(doc.results.every((r) => r.status !== 'success')).toBe(true);
    expect(Object.keys(doc.tenants).sort()).toEqual([...demo.tenantIds].sort());
    expect(doc.nodes.find((n) => n.node === 'stg_encounters')!.counts).toEqual({ success: 3, error: 0, skipped: 0, interrupted: 0 });
    const full = JSON.parse(readFileSync(join(demo.dir, 'target/run_results.full.json'), 'utf8')) as RunResults;
    const back = readRunResults(join(demo.dir, 'target/run_results.json'));
    const key = (r: NodeResult) => `${r.node} ${r.status} ${r.code ?? ''}`;
    expect(back.results.map(key).sort()).toEqual(full.results.map(key).sort());
    expect(back.tenants).toEqual(full.tenants);
    expect(text.length).toBeLessThan(readFileSync(join(demo.dir, 'target/run_results.full.json'), 'utf8').length / 2);
  });

  it('--log-format json still writes each alert as a JSON line on stdout, and the log file too', async () => {
    const json = await cli('run', '--project-dir', demo.dir, '--select', 'broken', '--log-format', 'json');
    expect(json.code).toBe(1);
    const alerts = json.out.map((l) => JSON.parse(l) as { event: string; kind?: string }).filter((e) => e.event === 'alert');
    // This second run may also page SLA alerts: whether a practice's morning deadline has passed
    // depends on the hour the suite runs (CI at 11:30 UTC caught sla_late for New York).
    expect(alerts.filter((a) => a.kind === 'node_failed')).toHaveLength(3);
    expect(alerts.filter((a) => !['node_failed', 'sla_late', 'sla_at_risk'].includes(a.kind ?? '')).map((a) => a.kind)).toEqual([]);
    expect(readFileSync(join(demo.dir, 'target/tsform.log'), 'utf8')).toMatch(/\[info\] tsform run --project-dir .* --select broken --log-format json/);
    // run_results.full.json is only written when asked for.
    expect(existsSync(join(demo.dir, 'target/run_results.full.json'))).toBe(false);
  });

  it('writes compiled models and tests that run as pasted (one practice as a literal, said so), bound parameters kept in the manifest', async () => {
    const compiled = readFileSync(join(demo.dir, 'target/compiled/stg_encounters.sql'), 'utf8');
    expect(compiled).not.toContain('$1::VARCHAR[]');
    expect(compiled).toMatch(/ANY\(ARRAY\['p_\w+'\]::VARCHAR\[\]\)/);
    expect(compiled).toMatch(/-- tsform: .*PASTEABLE COPY: \$1, the practice ids tsform binds as a parameter/);
    const manifest = JSON.parse(readFileSync(join(demo.dir, 'target/manifest.json'), 'utf8')) as { models: Record<string, { compiled_sql: string }>; tests: Record<string, unknown> };
    expect(manifest.models.stg_encounters!.compiled_sql).toContain('$1::VARCHAR[]');
    const tests = Object.keys(manifest.tests);
    for (const t of tests) expect(existsSync(join(demo.dir, 'target/compiled/tests', `${t}.sql`)), t).toBe(true);
    const db = await DuckDBInstance.create(join(demo.dir, 'target/tsform.duckdb'), { access_mode: 'READ_ONLY' });
    const conn = await db.connect();
    try {
      const rows = (await conn.runAndReadAll(compiled)).getRowObjects();
      expect(rows.length).toBeGreaterThan(0);
      const test = tests.find((t) => t.startsWith('not_null_stg_encounters'))!;
      const failures = (await conn.runAndReadAll(readFileSync(join(demo.dir, 'target/compiled/tests', `${test}.sql`), 'utf8'))).getRowObjects();
      expect(failures).toEqual([]);
    } finally {
      conn.closeSync();
    }
  });
});

describe('run_results.json size', () => {
  it('at 5,000 practices × 28 nodes with their tests and 1% failing: a few hundred kB, not tens of MB', () => {
    const practices = Array.from({ length: 5000 }, (_, i) => `p_${String(i).padStart(10, '0')}`);
    const results: NodeResult[] = [];
    for (let n = 0; n < 28; n++) {
      for (const [i, p] of practices.entries()) {
        const failed = n === 20 && i % 100 === 0;
        const skipped = n > 20 && i % 100 === 0;
        results.push({ node: `model_${n}@${p}`, model: `model_${n}`, tenant: p, kind: 'build', status: failed ? 'error' : skipped ? 'skipped' : 'success', rows: failed || skipped ? null : 100 + i, duration_ms: 10 + (i % 50), message: failed ? 'models/m.sql:8:3: Binder Error: x' : skipped ? 'skipped: model_20 failed for this practice' : null, ...(failed ? { code: 'TSF401' } : skipped ? { code: 'TSF402' } : {}), batch_size: 50 });
        if (!failed && !skipped) for (let t = 0; t < 2; t++) results.push({ node: `test:t${n}_${t}@${p}`, model: `model_${n}`, tenant: p, kind: 'test', status: 'success', rows: 0, duration_ms: 3, message: null });
      }
    }
    const run: RunResults = { schema_version: 1, run_id: 'r', command: 'build', target: 'duckdb', started_at: '', finished_at: '', elapsed_ms: 1, results, tenants: summarizeTenants(results, practices), alerts: [] };
    const v1 = JSON.stringify(run, null, 2).length;
    const v2 = JSON.stringify(toRunResultsFile(run)).length;
    console.log(JSON.stringify({ practices: 5000, units: results.length, run_results_v1_bytes: v1, run_results_v2_bytes: v2 }));
    expect(v1).toBeGreaterThan(50_000_000);
    expect(v2).toBeLessThan(1_000_000);
  });
});
