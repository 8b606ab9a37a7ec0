import type { VerifyCheck, VerifyReport } from './verify-types.ts';

const CHECK_ORDER = [
  'exists', 'owner', 'attributes', 'functions', 'schema_usage', 'membership', 'tenant_column', 'rls', 'policy', 'other_policies', 'security_invoker',
  'tenant_index', 'own_rows', 'no_access', 'other_rows', 'copy_out', 'spoof_setting', 'set_role', 'write_other',
];
/** Failed roles shown per relation × check; the table counts all of them. */
const FAILURES_SHOWN = 3;

/** relation × check with passed/failed counts over roles, then the failures, then a summary. */
export function formatVerifyReport(r: VerifyReport): string {
  const rows = new Map<string, { relation: string; check: string; passed: number; failed: VerifyCheck[] }>();
  for (const c of r.checks) {
    const key = `${c.relation}\u0000${c.check}`;
    const row = rows.get(key) ?? { relation: c.relation, check: c.check, passed: 0, failed: [] };
    if (c.passed) row.passed++;
    else row.failed.push(c);
    rows.set(key, row);
  }
  const rank = (check: string) => {
    const i = CHECK_ORDER.indexOf(check);
    return i === -1 ? CHECK_ORDER.length : i;
  };
  const sorted = [...rows.values()].sort((a, b) => {
    const special = Number(!a.relation.startsWith('(')) - Number(!b.relation.startsWith('('));
    return special || a.relation.localeCompare(b.relation) || rank(a.check) - rank(b.check) || a.check.localeCompare(b.check);
  });
  const header = ['relation', 'check', 'passed', 'failed'];
  const table = sorted.map((x) => [x.relation, x.check, String(x.passed), String(x.failed.length)]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...table.map((t, i) => `${line(t)}${sorted[i]!.failed.length > 0 ? '  FAILED' : ''}`)];
  const failed = sorted.filter((x) => x.failed.length > 0);
  if (failed.length > 0) {
    out.push('', `failures (${r.failures}):`);
    for (const x of failed) {
      for (const f of x.failed.slice(0, FAILURES_SHOWN)) out.push(`  ${f.relation} ${f.check} as ${f.role}: ${f.detail}`);
      if (x.failed.length > FAILURES_SHOWN) out.push(`  ${x.relation} ${x.check}: … and ${x.failed.length - FAILURES_SHOWN} more roles`);
    }
  }
  const seconds = r.elapsedMs === undefined ? '' : ` in ${(r.elapsedMs / 1000).toFixed(1)}s`;
  const kinds = r.probed ? ` (${r.probed.practice} practice, ${r.probed.group} group, ${r.probed.research} research)` : '';
  out.push('', `policies verify: ${r.relations} protected relations, ${r.roles} roles probed${kinds}, ${r.checks.length} checks, ${r.failures} failed${seconds}`);
  return out.join('\n');
}
