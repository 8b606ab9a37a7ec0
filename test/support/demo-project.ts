import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface DemoCopy {
  dir: string;
  tenantIds: string[];
  remove(): void;
}

/**
 * A copy of the demo project in a temp dir (its own target/ and database), optionally with
 * only some practices in tenants.yml and extra or replaced files.
 */
export function copyDemoProject(opts: { tenants?: (ids: string[]) => string[]; files?: Record<string, string> } = {}): DemoCopy {
  const dir = mkdtempSync(join(tmpdir(), 'tsform-demo-'));
  for (const entry of ['tsform.yml', 'tenants.yml', 'models', 'macros', 'seeds', 'tests', 'data', 'policies']) {
    try {
      cpSync(join(REPO_ROOT, entry), join(dir, entry), { recursive: true });
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
  }
  const doc = parse(readFileSync(join(dir, 'tenants.yml'), 'utf8')) as { tenants: { id: string }[] };
  if (opts.tenants) {
    const keep = new Set(opts.tenants(doc.tenants.map((t) => t.id)));
    doc.tenants = doc.tenants.filter((t) => keep.has(t.id));
    writeFileSync(join(dir, 'tenants.yml'), stringify(doc));
  }
  for (const [path, text] of Object.entries(opts.files ?? {})) {
    writeFileSync(join(dir, path), text);
  }
  return { dir, tenantIds: doc.tenants.map((t) => t.id), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The largest practices plus the first `n` small ones by id: enough to exercise batching. */
export function sampleTenants(n: number): (ids: string[]) => string[] {
  return (ids) => {
    const sorted = [...ids].sort();
    return [...new Set([...sorted.slice(0, n), 'p_79a06fd69f', 'p_41e2a44c47', 'p_86880e5887'])];
  };
}
