import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/artifacts/manifest.ts';
import { compileWorkspace } from '../../src/cli/api.ts';
import { registerDocsCommands } from '../../src/cli/docs-command.ts';
import { buildDocsData } from '../../src/docs/docs-data.ts';
import { writeDocsSite } from '../../src/docs/write-docs-site.ts';
import { REPO_ROOT } from '../support/demo-project.ts';
import { runRegistered } from './cli-harness.ts';

/**
 * The docs site of the demo project in headless Chromium: Debian's `chromium` package driven by
 * playwright-core (a browser download is not possible here). Never skipped: without the binary
 * the suite fails and says how to install it.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// As root in a closed network: no sandbox, and no background connections that would be refused.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCREENSHOT = join(REPO_ROOT, 'test-output', 'docs-site.png');

let browser: Browser | undefined;
let dir: string;

const MISSING_CHROMIUM =
  `Chromium not found at ${CHROMIUM}. The docs browser test needs Debian's chromium package: ` +
  "run 'apt-get install -y chromium' (.ci/run installs it), or set CHROMIUM_PATH to a Chromium binary.";

/** Every test fails (never skips) with the same clear message when there is no browser. */
function requireBrowser(): Browser {
  if (!browser) throw new Error(MISSING_CHROMIUM);
  return browser;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsform-docs-'));
  if (existsSync(CHROMIUM)) browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A page that records every console error and uncaught exception. */
async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await requireBrowser().newPage({ viewport: { width: 1440, height: 1000 } });
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, errors };
}

function closure(manifest: Manifest, id: string, direction: 'up' | 'down'): string[] {
  const nodes = { ...manifest.sources, ...manifest.builtins, ...manifest.seeds, ...manifest.models };
  const next = (n: string) => (direction === 'up' ? (nodes[n]?.depends_on ?? []) : Object.values(nodes).filter((m) => m.depends_on.includes(n)).map((m) => m.name));
  const seen = new Set<string>();
  const stack = [...next(id)];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...next(n));
  }
  return [...seen].sort();
}

const attrs = (page: Page, selector: string, name: string) => page.$$eval(selector, (els, a) => els.map((e) => e.getAttribute(a) ?? ''), name);

/**
 * Waits until the URL hash is `hash` and the app has drawn the view for it. `hashchange` fires
 * after the hash is set, so waiting for the hash alone would read the previous view.
 */
async function shown(page: Page, hash: string, view: string): Promise<void> {
  await page.waitForFunction((h) => location.hash === h, hash);
  await page.waitForSelector(view);
}

/** Selects a view by its hash, as a link or the address bar would, without reloading the page. */
async function go(page: Page, hash: string, view: string): Promise<void> {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
  await shown(page, hash, view);
}

describe('docs site of the demo project, in headless Chromium', () => {
  let manifest: Manifest;
  let page: Page;
  let errors: string[];
  let index: string;

  beforeAll(async () => {
    manifest = compileWorkspace(REPO_ROOT, { write: false }).manifest;
    const out = join(dir, 'site');
    const run = await runRegistered(registerDocsCommands, ['docs', 'generate', '--project-dir', REPO_ROOT, '--out', out]);
    expect(run.err).toEqual([]);
    expect(run.code).toBe(0);
    index = join(out, 'index.html');
    expect(run.out.join('\n')).toContain(index);
    if (browser) ({ page, errors } = await openPage(pathToFileURL(index).href));
  });

  beforeEach(() => {
    requireBrowser();
  });

  it('writes a self-contained site: no fetch, no external URL', () => {
    // docs-data.js is the project's own text (a description may hold a URL); the site's code may not.
    for (const file of ['index.html', 'dom.js', 'lineage.js', 'sections.js', 'app.js', 'style.css']) {
      const text = readFileSync(join(dir, 'site', file), 'utf8');
      expect(text, file).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
      expect(text, file).not.toMatch(/\bfetch\(|XMLHttpRequest|innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    }
    expect(readFileSync(join(dir, 'site', 'docs-data.js'), 'utf8')).toMatch(/^\/\/.*\nwindow\.__TSFORM_DOCS__ = \{/);
  });

  it('renders: title, every model in the list, sources, seeds and all practices', async () => {
    expect(await page.title()).toBe(`${manifest.project} · tsform docs`);
    expect(await attrs(page, '#nav-models li[data-node]', 'data-node')).toEqual(Object.keys(manifest.models).sort());
    expect((await attrs(page, '#nav-sources li[data-node]', 'data-node')).sort()).toEqual(Object.keys(manifest.sources).sort());
    expect((await attrs(page, '#nav-seeds li[data-node]', 'data-node')).sort()).toEqual([...Object.keys(manifest.seeds), ...Object.keys(manifest.builtins)].sort());
    expect(await page.textContent('#count-practices')).toBe(String(manifest.tenants.length));
    // The overview draws the whole project's lineage.
    expect(await page.locator('[data-testid=overview] svg[data-testid=lineage] g.node').count()).toBe(
      Object.keys(manifest.models).length + Object.keys(manifest.sources).length + Object.keys(manifest.seeds).length + Object.keys(manifest.builtins).length,
    );
  });

  it('search finds provider_panel and hides unrelated models', async () => {
    await page.fill('#search', 'provider_panel');
    await expect.poll(() => page.locator('#nav-models li[data-node="provider_panel"]').isVisible()).toBe(true);
    for (const name of Object.keys(manifest.models).filter((n) => n !== 'provider_panel')) {
      expect(await page.locator(`#nav-models li[data-node="${name}"]`).isVisible(), name).toBe(false);
    }
    expect(await page.textContent('#count-models')).toBe(`1 of ${Object.keys(manifest.models).length}`);
    // Sources and practices are filtered by the same box: nothing here is called provider_panel.
    expect(await page.locator('#nav-sources li[data-node]:visible').count()).toBe(0);

    // A column name finds the relations that carry it, and says which column matched.
    await page.fill('#search', 'ssn');
    await expect.poll(() => page.locator('#nav-models li[data-node="stg_patients"]').isVisible()).toBe(true);
    expect(await page.textContent('#nav-models li[data-node="stg_patients"] .column-hits')).toBe('columns: ssn');
    expect(await page.locator('#nav-sources li[data-node="source:ehr.patients"]').isVisible()).toBe(true);
    expect(await page.locator('#nav-models li[data-node="provider_panel"]').isVisible()).toBe(false);

    // Practices by name or id.
    const practice = compileWorkspace(REPO_ROOT, { write: false }).project.tenants[7]!;
    await page.fill('#search', practice.id);
    await expect.poll(() => attrs(page, '#nav-practices li[data-tenant]', 'data-tenant')).toEqual([practice.id]);
    await page.fill('#search', '');
    expect(await page.locator('#nav-models li[data-node]:visible').count()).toBe(Object.keys(manifest.models).length);
  });

  it('selecting practice_daily_activity shows its upstream and downstream neighbours', async () => {
    await page.click('#nav-models a[data-node="practice_daily_activity"]');
    await shown(page, '#model/practice_daily_activity', '[data-testid=node-view][data-node="practice_daily_activity"]');
    expect(await page.textContent('[data-testid=node-title]')).toBe('practice_daily_activity');

    const model = manifest.models.practice_daily_activity!;
    const downstream = Object.values({ ...manifest.models }).filter((m) => m.depends_on.includes(model.name)).map((m) => m.name).sort();
    expect(await attrs(page, '[data-testid=upstream] li[data-node]', 'data-node')).toEqual([...model.depends_on].sort());
    expect(await attrs(page, '[data-testid=downstream] li[data-node]', 'data-node')).toEqual(downstream);
    const ancestors = closure(manifest, model.name, 'up');
    const descendants = closure(manifest, model.name, 'down');
    // The demo's mart reads the ephemeral int_encounters_local, which reads stg_encounters and tenants.
    expect(ancestors).toEqual(expect.arrayContaining(['int_encounters_local', 'stg_encounters', 'tenants']));
    expect(await attrs(page, '[data-testid=ancestors] li[data-node]', 'data-node')).toEqual(ancestors);
    expect(await attrs(page, '[data-testid=descendants] li[data-node]', 'data-node')).toEqual(descendants);
    if (downstream.length === 0) expect(await page.textContent('[data-testid=downstream] li.empty')).toBe('none');
    // The graph holds exactly the selected node and its lineage, with one edge per dependency.
    expect((await attrs(page, '[data-testid=node-view] svg g.node', 'data-node')).sort()).toEqual([...ancestors, model.name, ...descendants].sort());
    expect(await page.locator('[data-testid=node-view] svg g.node.selected').getAttribute('data-node')).toBe(model.name);
    const inGraph = new Set([...ancestors, model.name, ...descendants]);
    const all = { ...manifest.sources, ...manifest.builtins, ...manifest.seeds, ...manifest.models };
    const edges = [...inGraph].flatMap((n) => (all[n]?.depends_on ?? []).filter((p) => inGraph.has(p)).map((p) => `${p}->${n}`)).sort();
    const drawn = await page.$$eval('[data-testid=node-view] svg path.edge', (ps) => ps.map((p) => `${p.getAttribute('data-from')}->${p.getAttribute('data-to')}`));
    expect(drawn.sort()).toEqual(edges);
    expect(await page.locator('#nav-models li.selected').getAttribute('data-node')).toBe(model.name);

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`docs site screenshot: ${SCREENSHOT}`);
  });

  it('clicking an upstream neighbour navigates to it; clicking a graph node too; the hash keeps the selection', async () => {
    await go(page, '#model/practice_daily_activity', '[data-testid=node-view][data-node="practice_daily_activity"]');
    const [first] = [...manifest.models.practice_daily_activity!.depends_on].sort();
    await page.click(`[data-testid=upstream] a[data-node="${first}"]`);
    await shown(page, `#model/${first}`, `[data-testid=node-view][data-node="${first}"]`);
    expect(await page.textContent('[data-testid=node-title]')).toBe(first);
    expect(await attrs(page, '[data-testid=downstream] li[data-node]', 'data-node')).toContain('practice_daily_activity');

    await page.click('[data-testid=node-view] svg g.node[data-node="stg_encounters"]');
    await shown(page, '#model/stg_encounters', '[data-testid=node-view][data-node="stg_encounters"]');
    expect(await page.textContent('[data-testid=node-title]')).toBe('stg_encounters');
    await page.click('[data-testid=upstream] a[data-node="source:ehr.encounters"]');
    await shown(page, '#source/ehr.encounters', '[data-testid=node-view][data-node="source:ehr.encounters"]');
    expect(await page.textContent('[data-testid=node-title]')).toBe('ehr.encounters');

    await page.goBack();
    await shown(page, '#model/stg_encounters', '[data-testid=node-view][data-node="stg_encounters"]');
    expect(await page.textContent('[data-testid=node-title]')).toBe('stg_encounters');
  });

  it('shows columns with PHI class badges, tests, scope, materialization, source and compiled SQL', async () => {
    await go(page, '#model/stg_patients', '[data-testid=node-view][data-node="stg_patients"]');
    const columns = manifest.models.stg_patients!.columns;
    expect(columns.ssn?.phi).toBe('direct');
    expect(await page.textContent('tr[data-column="ssn"] .phi')).toBe('direct');
    expect(await page.getAttribute('tr[data-column="ssn"] .phi', 'class')).toContain('phi-direct');
    for (const [name, c] of Object.entries(columns)) {
      expect(await page.getAttribute(`tr[data-column="${name}"] .phi`, 'data-phi'), name).toBe(c.phi);
    }
    const badges = await page.textContent('[data-testid=node-view] .badges');
    expect(badges).toContain('scope: tenant');
    expect(badges).toContain(manifest.models.stg_patients!.materialized);
    const tests = Object.values(manifest.tests).filter((t) => t.attached_to === 'stg_patients').map((t) => t.name).sort();
    expect(tests.length).toBeGreaterThan(0);
    expect(await attrs(page, '[data-testid=tests] tr[data-test]', 'data-test')).toEqual(tests);
    expect(await page.textContent('tr[data-column="patient_id"]')).toContain('unique');

    // The compiled SQL, beside the model file (test/docs/docs-layout.test.ts checks the layout).
    expect(await page.locator('[data-testid=compiled-sql] code').textContent()).toBe(manifest.models.stg_patients!.compiled_sql);
    expect(await page.locator('[data-testid=source-sql] code').textContent()).toContain('{{source "ehr" "patients"}}');
  });

  it('lists the practices in a searchable table with time zone, SLA, tags and pool', async () => {
    await go(page, '#practices', '[data-testid=practices-table]');
    const tenants = compileWorkspace(REPO_ROOT, { write: false }).project.tenants;
    expect(await page.locator('[data-testid=practices-table] tbody tr').count()).toBe(tenants.length);
    const t = tenants[3]!;
    const row = page.locator(`[data-testid=practices-table] tr[data-tenant="${t.id}"]`);
    const text = await row.textContent();
    for (const part of [t.id, t.name, t.timezone, t.readyBy, t.pool, ...t.tags]) expect(text).toContain(part);

    await page.fill('#search', 'ci-sample');
    const sample = tenants.filter((x) => x.tags.includes('ci-sample')).map((x) => x.id).sort();
    expect(sample.length).toBeGreaterThan(0);
    await expect.poll(async () => (await attrs(page, '[data-testid=practices-table] tbody tr', 'data-tenant')).sort()).toEqual(sample);
    await page.fill('#search', '');
  });

  it('logged no console error, page error or failed request', () => {
    expect(errors).toEqual([]);
  });
});

describe('docs site escapes user input', () => {
  it('shows a hostile description and project name as text, runs none of it', async () => {
    const ws = compileWorkspace(REPO_ROOT, { write: false });
    const hostile = '<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script> & <b>bold</b>';
    const manifest: Manifest = structuredClone(ws.manifest);
    manifest.project = '<i>proj</i>';
    manifest.models.provider_panel!.description = hostile;
    manifest.models.provider_panel!.columns.provider_id!.description = '<svg onload="window.__pwned=3">';
    const site = writeDocsSite(join(dir, 'hostile'), buildDocsData(manifest, ws.project.tenants, { generatedAt: new Date('2026-03-08T07:00:00Z') }));
    const { page, errors } = await openPage(`${pathToFileURL(site.index).href}#model/provider_panel`);
    await page.waitForSelector('[data-testid=description]');
    expect(await page.textContent('[data-testid=description]')).toBe(hostile);
    expect(await page.textContent('tr[data-column="provider_id"]')).toContain('<svg onload="window.__pwned=3">');
    expect(await page.title()).toBe('provider_panel · <i>proj</i> · tsform docs');
    expect(await page.textContent('#project-name')).toBe('<i>proj</i>');
    expect(await page.locator('main img, main b, main script, main td svg, #project-name i').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(errors).toEqual([]);
    await page.close();
  });
});
