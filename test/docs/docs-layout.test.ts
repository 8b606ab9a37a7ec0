import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileWorkspace } from '../../src/cli/api.ts';
import { cli } from '../support/cli.ts';
import { copyDemoProject, REPO_ROOT, type DemoCopy } from '../support/demo-project.ts';

/**
 * Issue 15, item 10: the docs site at 1280, 1400 and 1920 px in headless Chromium, on a project
 * made to overflow (long model and test names, a lineage far wider than the screen): nothing
 * scrolls the page sideways, every panel stays inside the viewport, the selected model is in
 * view inside its lineage panel; column types, source SQL beside compiled SQL, and the last run.
 * Screenshots go to test-output/. Never skipped: without Chromium every test fails and says so.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const OUT = join(REPO_ROOT, 'test-output');
const WIDTHS = [1280, 1400, 1920] as const;

// A chain of models with long names: its lineage is several screens wide.
// 48 bytes: with _s1 … _s8, within the 52 a model name may have (tsform's own names for it are 11 bytes longer)
const LONG = 'practice_monthly_encounters_by_class_for_dashbrd';
const chain = Array.from({ length: 8 }, (_, i) => `${LONG}_s${i + 1}`);
const files: Record<string, string> = {
  // No yml: its columns come from the warehouse only, unclassified.
  'models/marts/undocumented_counts.sql': 'select practice_id, count(*) as n from {{ref "stg_encounters"}} group by practice_id\n',
  [`models/marts/${chain[0]}.sql`]: `select practice_id, encounter_class, count(*) as encounters from {{ref "stg_encounters"}} group by practice_id, encounter_class\n`,
  ...Object.fromEntries(chain.slice(1).map((name, i) => [`models/marts/${name}.sql`, `select practice_id, encounter_class, encounters from {{ref "${chain[i]}"}}\n`])),
  'models/marts/_long.yml': `models:\n${chain
    .map(
      (name) =>
        `  - name: ${name}\n    columns:\n      - { name: practice_id, phi: none, tests: [not_null] }\n      - name: encounter_class\n        phi: none\n        data_type: VARCHAR\n        tests:\n          - relationships: { to: encounter_classes, field: encounter_class }\n          - accepted_values: { values: [ambulatory, emergency, inpatient, outpatient, urgentcare, wellness, home, hospice, snf, virtual] }\n      - { name: encounters, phi: none, data_type: BIGINT }\n`,
    )
    .join('')}`,
};

let browser: Browser | undefined;
let demo: DemoCopy;
let index: string;

function requireBrowser(): Browser {
  if (!browser) throw new Error(`Chromium not found at ${CHROMIUM}: run 'apt-get install -y chromium' or set CHROMIUM_PATH`);
  return browser;
}

async function open(width: number, hash: string): Promise<{ page: Page; errors: string[] }> {
  const page = await requireBrowser().newPage({ viewport: { width, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`${pathToFileURL(index).href}${hash}`);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, errors };
}

interface Box {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** Page-level overflow and the boxes of every panel, read in the page. */
function layout(page: Page) {
  return page.evaluate(() => {
    const box = (e: Element) => {
      const r = e.getBoundingClientRect();
      return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
    };
    const main = document.querySelector('main')!;
    return {
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
      main: box(main),
      panels: [...document.querySelectorAll('main .table-wrap, main .lineage-wrap, main .sql-pane, main table')].map((e) => ({ cls: e.className, ...box(e) })),
    };
  });
}

beforeAll(async () => {
  demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 3), files });
  mkdirSync(OUT, { recursive: true });
  if (existsSync(CHROMIUM)) browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  // Built for real: the warehouse has the relations whose column types the site shows.
  const built = await cli('build', '--project-dir', demo.dir, '--log-format', 'json');
  expect(built.code, built.out.filter((l) => l.includes('"error"')).join('\n')).toBe(0);
  const generated = await cli('docs', 'generate', '--project-dir', demo.dir);
  expect(generated.code, generated.err).toBe(0);
  expect(generated.out.join('\n')).toContain('column types from the warehouse');
  index = join(demo.dir, 'target/docs/index.html');
}, 240_000);

afterAll(async () => {
  await browser?.close();
  demo?.remove();
});

describe.each(WIDTHS)('docs site at %i px', (width) => {
  it.each(['', `#model/${chain[4]}`, `#model/${chain[0]}`, '#model/stg_patients', '#practices'])('route "%s": no sideways page scroll, every panel inside the viewport', async (hash) => {
    const { page, errors } = await open(width, hash);
    const l = await layout(page);
    expect(l.scrollWidth, 'the page scrolls sideways').toBeLessThanOrEqual(l.clientWidth);
    expect(l.main.right).toBeLessThanOrEqual(width);
    const wraps = l.panels.filter((p) => !p.cls.startsWith('columns') && !p.cls.startsWith('tests') && p.cls !== '' && !/^(models|runs|practices-table)$/.test(p.cls));
    for (const p of wraps) {
      expect(p.left, p.cls).toBeGreaterThanOrEqual(l.main.left);
      expect(p.right, p.cls).toBeLessThanOrEqual(l.main.right + 0.5);
    }
    expect(errors).toEqual([]);
    if (hash === `#model/${chain[4]}`) await page.screenshot({ path: join(OUT, `docs-site-${width}.png`) });
    await page.close();
  });

  it('the selected model is in view inside its lineage panel, which scrolls on its own', async () => {
    const { page } = await open(width, `#model/${chain[4]}`);
    const r = await page.evaluate(() => {
      const wrap = document.querySelector('.lineage-wrap')!;
      const sel = wrap.querySelector('g.node.selected')!.getBoundingClientRect();
      const w = wrap.getBoundingClientRect();
      return { sel: { left: sel.left, right: sel.right, top: sel.top, bottom: sel.bottom }, wrap: { left: w.left, right: w.right, top: w.top, bottom: w.bottom }, scrollLeft: wrap.scrollLeft, scrollable: wrap.scrollWidth > wrap.clientWidth };
    });
    // Far wider than any screen: it keeps a readable size and scrolls, centred on the selection.
    expect(r.scrollable).toBe(true);
    expect(r.scrollLeft).toBeGreaterThan(0);
    const inside = (s: Box, w: Box) => s.left >= w.left && s.right <= w.right && s.top >= w.top && s.bottom <= w.bottom;
    expect(inside(r.sel, r.wrap), JSON.stringify(r)).toBe(true);
    await page.close();
  });

  it('a lineage a little wider than its panel is scaled to fit, not cut off', async () => {
    const { page } = await open(width, '');
    const r = await page.evaluate(() => {
      const wrap = document.querySelector('.lineage-wrap')!;
      return { scale: Number(wrap.getAttribute('data-scale')), scrollWidth: wrap.scrollWidth, clientWidth: wrap.clientWidth };
    });
    // The whole project's graph (the long chain included) is much wider: it scrolls inside its panel instead.
    expect(r.scale === 1 ? r.scrollWidth > r.clientWidth : r.scrollWidth <= r.clientWidth + 1).toBe(true);
    await page.close();
    const small = await open(width, '#model/stg_patients');
    const s = await small.page.evaluate(() => {
      const wrap = document.querySelector('.lineage-wrap')!;
      return { scrollWidth: wrap.scrollWidth, clientWidth: wrap.clientWidth };
    });
    expect(s.scrollWidth).toBeLessThanOrEqual(s.clientWidth + 1);
    await small.page.close();
  });
});

describe('docs site content: types, source SQL, last run', () => {
  it('column types come from the warehouse after a run, else from the yml, and say which', async () => {
    const { page } = await open(1400, '#model/stg_patients');
    expect(await page.getAttribute('tr[data-column="birth_date"] td.type', 'data-type-source')).toBe('warehouse');
    expect((await page.textContent('tr[data-column="birth_date"] td.type'))?.toLowerCase()).toBe('date');
    expect((await page.textContent('tr[data-column="patient_id"] td.type'))?.toLowerCase()).toBe('varchar');
    await page.evaluate(() => {
      location.hash = '#model/undocumented_counts';
    });
    await page.waitForSelector('[data-testid=node-view][data-node="undocumented_counts"]');
    // A model without yml: the warehouse's columns, typed, marked unclassified (not silently 'none').
    expect(await page.getAttribute('tr[data-column="n"] .phi', 'data-phi')).toBe('unclassified');
    expect(await page.textContent('tr[data-column="n"] td.type')).toBe('bigint');
    expect(await page.getAttribute('tr[data-column="practice_id"] td.type', 'data-type-source')).toBe('warehouse');
    await page.close();
    // Not built (step 8 is downstream of what was built? no: every step was built) — the last step's yml type shows when the catalog is off.
    const noCatalog = await cli('docs', 'generate', '--project-dir', demo.dir, '--no-catalog', '--out', join(demo.dir, 'target/docs-yml'));
    expect(noCatalog.code).toBe(0);
    expect(noCatalog.out.join('\n')).toContain('column types: column types from the yml (data_type): --no-catalog');
    const data = readFileSync(join(demo.dir, 'target/docs-yml/docs-data.js'), 'utf8');
    const parsed = JSON.parse(data.slice(data.indexOf('=') + 1).trim().replace(/;$/, '')) as { nodes: Record<string, { columns: { name: string; data_type?: string; type_source?: string }[] }> };
    const col = parsed.nodes[chain[0]!]!.columns.find((c) => c.name === 'encounters')!;
    expect(col).toMatchObject({ data_type: 'BIGINT', type_source: 'yml' });
    expect(parsed.nodes.stg_patients!.columns.find((c) => c.name === 'birth_date')!.type_source).toBeUndefined();
  });

  it('shows the model file with line numbers beside the compiled SQL', async () => {
    const { page } = await open(1400, '#model/stg_patients');
    const ws = compileWorkspace(demo.dir, { write: false });
    const source = ws.project.models.find((m) => m.name === 'stg_patients')!.sql;
    expect(await page.textContent('[data-testid=source-sql] code')).toBe(source);
    expect(await page.textContent('[data-testid=compiled-sql] code')).toBe(ws.manifest.models.stg_patients!.compiled_sql);
    expect(await page.locator('[data-testid=source-sql] .line').count()).toBe(source.split('\n').length);
    // Line numbers are drawn by CSS (not copied with the SQL): the 3rd line is numbered 3.
    expect(await page.evaluate(() => getComputedStyle(document.querySelectorAll('[data-testid=source-sql] .line')[2]!, '::before').content)).toBe('counter(line)');
    // Side by side at 1400 px.
    const [a, b] = await Promise.all(['source-sql', 'compiled-sql'].map((t) => page.locator(`[data-testid=${t}]`).boundingBox()));
    expect(a!.y).toBe(b!.y);
    expect(a!.x + a!.width).toBeLessThanOrEqual(b!.x);
    await page.close();
  });

  it('shows the last run per model: status, counts, rows, time, and each practice', async () => {
    // The compact run_results.json (version 2): a summary per node, successes as counts.
    const run = JSON.parse(readFileSync(join(demo.dir, 'target/run_results.json'), 'utf8')) as { schema_version: number; nodes: { node: string; kind: string; counts: { success: number }; rows: number }[] };
    expect(run.schema_version).toBe(2);
    const rec = run.nodes.find((n) => n.node === 'stg_patients' && n.kind === 'build')!;
    expect(rec.counts.success).toBe(3);
    const { page } = await open(1400, '#model/stg_patients');
    expect(await page.getAttribute('[data-testid=last-run]', 'data-status')).toBe('success');
    expect(await page.textContent('[data-testid=last-run-counts]')).toBe(`${rec.counts.success} success`);
    expect(await page.textContent('[data-testid=last-run-rows]')).toBe(` · ${rec.rows.toLocaleString('en-US')} rows`);
    expect(await page.textContent('[data-testid=last-run-more]')).toBe('3 practice(s) succeeded (run_results.json keeps successes as counts)');
    await page.close();
  });

  it('a failed practice is listed first with its message; a run_results.json of another shape degrades, never breaks the site', async () => {
    const path = join(demo.dir, 'target/run_results.json');
    const [a, b] = [...demo.tenantIds].sort();
    writeFileSync(
      path,
      JSON.stringify({
        command: 'build',
        finished_at: '2026-03-08T07:00:00.000Z',
        results: [
          { model: 'stg_patients', tenant: a, kind: 'build', status: 'success', rows: 5, duration_ms: 10 },
          { model: 'stg_patients', tenant: b, kind: 'build', status: 'error', rows: null, duration_ms: 12, message: 'models/staging/stg_patients.sql:3: boom' },
          { model: 'stg_patients', tenant: b, kind: 'test', status: 'error' },
          { model: 'stg_patients', status: 'weird' },
          null,
          'text',
        ],
      }),
    );
    expect((await cli('docs', 'generate', '--project-dir', demo.dir, '--no-catalog')).code).toBe(0);
    const { page, errors } = await open(1400, '#model/stg_patients');
    expect(await page.getAttribute('[data-testid=last-run]', 'data-status')).toBe('error');
    expect(await page.textContent('[data-testid=last-run-counts]')).toBe('1 success, 1 error');
    expect(await page.$$eval('[data-testid=last-run-practices] tr[data-tenant]', (t) => t.map((x) => x.getAttribute('data-tenant')))).toEqual([b, a]);
    expect(await page.textContent(`[data-testid=last-run-practices] tr[data-tenant="${b}"] td.message`)).toBe('models/staging/stg_patients.sql:3: boom');
    expect(await page.textContent('[data-testid=last-run]')).toContain('1 failing test(s)');
    // A model not in the run says so.
    await page.evaluate(() => {
      location.hash = '#model/provider_panel';
    });
    await page.waitForSelector('[data-testid=node-view][data-node="provider_panel"]');
    expect(await page.textContent('[data-testid=last-run]')).toBe('Not in the last run (build).');
    await page.close();
    // Version 2 with a failure: counts from the node summary, the failing practice from results.
    writeFileSync(
      path,
      JSON.stringify({
        schema_version: 2,
        command: 'run',
        nodes: [
          { node: 'stg_patients', model: 'stg_patients', kind: 'build', per_practice: true, counts: { success: 2, error: 1, skipped: 0, interrupted: 0 }, rows: 7, duration_ms: { total: 30, max: 12, p50: 9, p90: 12 } },
          { node: 'test:not_null_stg_patients_patient_id', model: 'stg_patients', kind: 'test', per_practice: true, counts: { success: 1, error: 2, skipped: 0, interrupted: 0 }, rows: 4, duration_ms: { total: 3, max: 1, p50: 1, p90: 1 } },
        ],
        results: [{ node: `stg_patients@${b}`, model: 'stg_patients', tenant: b, kind: 'build', status: 'error', rows: null, duration_ms: 12, message: 'boom at line 3' }],
        tenants: {},
      }),
    );
    expect((await cli('docs', 'generate', '--project-dir', demo.dir, '--no-catalog')).code).toBe(0);
    const v2 = await open(1400, '#model/stg_patients');
    expect(await v2.page.textContent('[data-testid=last-run-counts]')).toBe('2 success, 1 error');
    expect(await v2.page.textContent('[data-testid=last-run-rows]')).toBe(' · 7 rows');
    expect(await v2.page.$$eval('[data-testid=last-run-practices] tr[data-tenant]', (t) => t.map((x) => x.getAttribute('data-tenant')))).toEqual([b]);
    expect(await v2.page.textContent('[data-testid=last-run]')).toContain('2 failing test(s)');
    expect(await v2.page.textContent('[data-testid=last-run-more]')).toBe('and 2 practice(s) succeeded');
    expect(v2.errors).toEqual([]);
    await v2.page.close();

    // An unknown layout: nothing per node to read; the site still renders.
    for (const doc of ['{"schema_version": 2, "nodes": {"stg_patients": {"status": "success"}}}', 'not json', '[]']) {
      writeFileSync(path, doc);
      expect((await cli('docs', 'generate', '--project-dir', demo.dir, '--no-catalog')).code, doc).toBe(0);
      const again = await open(1400, '#model/stg_patients');
      expect(await again.page.isVisible('[data-testid=last-run]')).toBe(true);
      expect(again.errors).toEqual([]);
      await again.page.close();
    }
    expect(errors).toEqual([]);
  });
});
