import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';

describe('a practice whose node hangs', () => {
  let demo: DemoCopy;
  const slow = 'p_79a06fd69f';
  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(6) });
    await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+stg_providers'] });
    // Billions of rows for one practice only: it runs until the node timeout cancels it.
    writeFileSync(
      join(demo.dir, 'models/marts/slow_mart.sql'),
      `select p.practice_id, count(*) as n
from {{ref "stg_providers"}} p, range(case when p.practice_id = '${slow}' then 50000000000 else 1 end) r
group by p.practice_id
`,
    );
    writeFileSync(join(demo.dir, 'models/marts/after_slow.sql'), 'select * from {{ref "slow_mart"}}\n');
  });
  afterAll(() => demo.remove());

  it('is cancelled at the node timeout; every other practice completes', async () => {
    const run = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['slow_mart+'], nodeTimeoutMs: 1500 });
    const errors = run.results.filter((r) => r.status === 'error');
    expect(errors.map((e) => [e.node, e.code])).toEqual([[`slow_mart@${slow}`, 'TSF411']]);
    expect(errors[0]!.message).toMatch(/timeout/);
    expect(run.results.find((r) => r.node === `after_slow@${slow}`)!.status).toBe('skipped');
    const others = run.results.filter((r) => r.tenant !== slow && r.tenant !== null);
    expect(others.length).toBe(2 * (demo.tenantIds.length - 1));
    expect(others.every((r) => r.status === 'success')).toBe(true);
  });
});
