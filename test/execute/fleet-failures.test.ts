import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { fixedClock, isoBefore } from '../../src/clock.ts';
import { writeTenantState } from '../../src/execute/state-store.ts';
import { localDateOf } from '../../src/sla/deadline.ts';
import { copyDemoProject, REPO_ROOT, sampleTenants, type DemoCopy } from '../support/demo-project.ts';

const run = promisify(execFile);

describe('a fleet run where one practice fails and another hangs', () => {
  let demo: DemoCopy;
  let server: Server;
  const received: { tenant: { id: string; name: string }; kind: string; sla: { ready_by: string } }[] = [];
  const failing = 'p_00ffb20407';
  const hanging = 'p_79a06fd69f';

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    process.env.TSFORM_TEST_ALERT_WEBHOOK = `http://127.0.0.1:${port}/alerts`;

    demo = copyDemoProject({
      tenants: sampleTenants(8),
      files: {
        // A data-dependent SQL error for one practice, a runaway query for another.
        'models/marts/fragile_mart.sql': `select practice_id, cast(case when practice_id = '${failing}' then 'not a number' else '1' end as integer) as v
from {{ref "stg_providers"}}
`,
        'models/marts/slow_mart.sql': `select p.practice_id, count(*) as n
from {{ref "fragile_mart"}} p, range(case when p.practice_id = '${hanging}' then 50000000000 else 1 end) r
group by p.practice_id
`,
        // Counts only, pseudonymized (in a research schema), so a global model may read it.
        'models/marts/provider_counts.sql': `{{config pseudonymized=true schema="pseudo"}}
select practice_id, count(*) as providers from {{ref "slow_mart"}} group by practice_id
`,
        // Lineage fails closed: the pseudonymized model's inputs must be classified.
        'models/marts/_fleet.yml': `models:
  - name: slow_mart
    columns:
      - { name: practice_id, phi: none }
      - { name: n, phi: none }
`,
        'models/marts/fleet_provider_total.sql': `{{config scope="global" schema="pseudo"}}
select count(*) as practices, sum(providers) as providers from {{ref "provider_counts"}}
`,
      },
    });
    appendFileSync(join(demo.dir, 'tsform.yml'), '\nalerts:\n  - type: log\n  - type: webhook\n    url_env: TSFORM_TEST_ALERT_WEBHOOK\n    retries: 0\n');
  });
  afterAll(() => {
    demo.remove();
    server.close();
    delete process.env.TSFORM_TEST_ALERT_WEBHOOK;
  });

  it('completes every other practice, alerts the failing ones by name, and runs global nodes on last-good data', async () => {
    const log: string[] = [];
    const result = await runWorkspace({
      projectDir: demo.dir,
      command: 'run',
      // long enough for every healthy node on a loaded 2-core machine (2 s timed out a global node in CI); the runaway query needs hours
      nodeTimeoutMs: 10_000,
      alertLog: { write: (l: string) => log.push(l) },
    });
    const errors = result.results.filter((r) => r.status === 'error');
    expect(errors.map((e) => [e.node, e.code]).sort()).toEqual([
      [`fragile_mart@${failing}`, 'TSF401'],
      [`slow_mart@${hanging}`, 'TSF411'],
    ]);
    for (const t of demo.tenantIds.filter((id) => id !== failing && id !== hanging)) {
      expect(result.tenants[t]!.status, t).toBe('success');
    }
    const global = result.results.find((r) => r.node === 'fleet_provider_total')!;
    expect(global.status).toBe('success');
    expect(global.stale_tenants).toEqual([failing, hanging].sort());

    // Alerts name the practice (id and name) and the SLA at stake, in the log and on the webhook.
    const failedAlerts = log.map((l) => JSON.parse(l)).filter((a) => a.kind === 'node_failed');
    expect(failedAlerts.map((a) => a.tenant.id).sort()).toEqual([failing, hanging].sort());
    expect(failedAlerts.every((a) => a.tenant.name.length > 0 && a.sla.ready_by && a.sla.timezone)).toBe(true);
    expect(received.filter((a) => a.kind === 'node_failed').map((a) => a.tenant.id).sort()).toEqual([failing, hanging].sort());
    expect(result.alerts!.filter((a) => a.kind === 'node_failed').length).toBe(2);
  });

  /**
   * A run of +stg_providers for one practice at `minutesBefore` its deadline on 2026-11-29 (New
   * York), after history that says each of its nodes takes 20 minutes. Everything the run reads
   * about time comes from the injected clock, and the state it reads is written here relative to
   * that clock: the test means the same on any date the machine shows.
   */
  async function runBeforeDeadline(minutesBefore: () => number) {
    const practice = 'p_41e2a44c47';
    // The practice's own state and node history come from an earlier run: the fleet run of the
    // first case, or (this case alone) a run of this practice.
    if (!existsSync(join(demo.dir, 'target/tsform.duckdb'))) {
      const built = await runWorkspace({ projectDir: demo.dir, command: 'run', tenants: [practice] });
      expect(built.results.filter((r) => r.status !== 'success').map((r) => r.node)).toEqual([]);
    }
    const db = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 1 });
    const readyBy = (await db.query('SELECT ready_by FROM tsform_meta.tenants WHERE practice_id = $1', [practice])).rows[0]!.ready_by as string;
    const [h, m] = readyBy.split(':').map(Number);
    // ready_by in New York, winter: UTC-5.
    const deadline = Date.UTC(2026, 10, 29, h! + 5, m!);
    const clock = fixedClock(new Date(deadline - minutesBefore() * 60_000));
    // Still the practice's 2026-11-29: the data date is 2026-11-28 in both cases.
    expect(localDateOf(clock.now(), 'America/New_York')).toBe('2026-11-29');
    await db.query(
      `INSERT INTO tsform_meta.node_runs SELECT 'hist', 'run', model || '@' || $1, model, $1, 'build', 'success', 1, 1200000, NULL, CAST($2 AS TIMESTAMPTZ)
         FROM (SELECT DISTINCT model FROM tsform_meta.node_runs WHERE tenant = $1 AND run_id <> 'hist') m`,
      [practice, isoBefore(clock, 86_400_000)],
    );
    // Loaded through the day before the data date: due today, not late from yesterday.
    await writeTenantState(db, 'tsform_meta', [{ tenant: practice, loadedThrough: '2026-11-27', lastSuccessAt: isoBefore(clock, 86_400_000), runId: 'hist' }]);
    await db.close();
    const log: string[] = [];
    const result = await runWorkspace({
      projectDir: demo.dir,
      command: 'run',
      tenants: [practice],
      select: ['+stg_providers'],
      clock,
      alertLog: { write: (l: string) => log.push(l) },
    });
    const sla = log.map((l) => JSON.parse(l)).filter((a) => a.kind === 'sla_at_risk' || a.kind === 'sla_late');
    return { practice, result, sla };
  }

  it('raises an at-risk alert while running, as soon as a practice cannot make its deadline', async () => {
    // The deadline is 10 minutes away: 20 minutes of history per node cannot make it.
    const { practice, result, sla } = await runBeforeDeadline(() => 10);
    expect(sla.map((a) => a.tenant.id)).toContain(practice);
    expect(sla[0].message).toMatch(/predicted finish/);
    expect(result.alerts!.some((a) => a.tenant === practice && a.kind === 'sla_at_risk')).toBe(true);
  });

  it('raises no SLA alert when the predicted finish is before the deadline', async () => {
    // The same history; the run builds the practice's few +stg_providers nodes (20 minutes each
    // by history), with two and a half hours left.
    const { result, sla } = await runBeforeDeadline(() => 150);
    expect(sla).toEqual([]);
    expect(result.alerts!.filter((a) => a.kind === 'sla_at_risk' || a.kind === 'sla_late')).toEqual([]);
  });
});

describe('two tsform processes started at once on overlapping practices', () => {
  let demo: DemoCopy;
  beforeAll(() => {
    demo = copyDemoProject({ tenants: sampleTenants(6) });
  });
  afterAll(() => demo.remove());

  it('never write one practice at once, and end where a single run ends', async () => {
    const bin = join(REPO_ROOT, 'bin/tsform.mjs');
    const [a, b] = demo.tenantIds;
    const args = (tenants: string) => [bin, 'run', '--project-dir', demo.dir, '--tenant', tenants, '--log-format', 'json'];
    const [first, second] = await Promise.all([
      run(process.execPath, args(`${a},${b},p_79a06fd69f`)),
      run(process.execPath, args(`${b},p_79a06fd69f,p_41e2a44c47`)),
    ]);
    for (const out of [first, second]) {
      const summary = JSON.parse(out.stdout.trim().split('\n').at(-1)!);
      expect(summary.event).toBe('summary');
      expect(summary.error).toBe(0);
    }
    const checksum = async () => {
      const db = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 1 });
      try {
        const { rows } = await db.query('SELECT practice_id, count(*) AS n, sum(hash(t)) AS h FROM marts.practice_daily_activity t GROUP BY 1 ORDER BY 1');
        return rows;
      } finally {
        await db.close();
      }
    };
    const concurrent = await checksum();
    await run(process.execPath, args(`${a},${b},p_79a06fd69f,p_41e2a44c47`));
    expect(await checksum()).toEqual(concurrent);
  });
});
