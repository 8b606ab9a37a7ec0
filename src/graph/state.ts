import { createHash } from 'node:crypto';
import { manifestNodes, type Manifest, type ManifestNode, type ManifestTest } from '../artifacts/manifest.ts';

/**
 * `state:modified` (dbt's slim CI): nodes whose definition differs from a previous manifest.
 * The fingerprint covers the compiled SQL (so a changed macro or var shows in every model that
 * uses it, and a changed upstream relation name too), the config, the yml columns and the tests.
 */
export function modifiedNodes(current: Manifest, previous: Manifest): Set<string> {
  const before = fingerprints(previous);
  const out = new Set<string>();
  for (const [id, fp] of fingerprints(current)) if (before.get(id) !== fp) out.add(id);
  return out;
}

function fingerprints(m: Manifest): Map<string, string> {
  const tests = new Map<string, ManifestTest[]>();
  for (const t of Object.values(m.tests)) tests.set(t.attached_to, [...(tests.get(t.attached_to) ?? []), t]);
  const out = new Map<string, string>();
  for (const [id, n] of Object.entries(manifestNodes(m))) out.set(id, fingerprint(n, tests.get(id) ?? []));
  return out;
}

function fingerprint(n: ManifestNode, tests: ManifestTest[]): string {
  // Line maps locate errors; they are not the definition (a manifest written before them must not mark every model modified).
  const { path: _path, depends_on: _deps, ...rest } = n;
  const { compiled_lines: _lines, compiled_incremental_lines: _incrementalLines, ...definition } = rest as typeof rest & { compiled_lines?: unknown; compiled_incremental_lines?: unknown };
  const payload = canonicalJson({ definition, tests: tests.map((t) => [t.name, t.sql]).sort() });
  return createHash('sha256').update(payload).digest('hex');
}

/** JSON with object keys sorted: the same definition fingerprints the same whatever wrote it (an upgraded manifest orders keys differently). */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
