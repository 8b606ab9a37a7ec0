import type { NodeResult } from '../artifacts/run-results.ts';

/**
 * Failures for a person: one error per model (or data test), with the practices it failed for,
 * not one line per practice (issue 15). A model that fails for 200 practices with the same
 * missing relation is one problem; its first failure is shown as it happens, the whole of it
 * once at the end. Messages are the runner's (redacted already); they may differ per practice
 * (a test's failing-row count), so the first is shown and the difference is said.
 */
export class FailureDigest {
  private readonly byKey = new Map<string, { tenants: string[]; message: string; differs: boolean }>();

  /** The lines to print now: the first failure of each model, none for its later practices. */
  add(results: readonly NodeResult[]): string[] {
    const now: string[] = [];
    for (const r of results) {
      if (r.status !== 'error') continue;
      const key = r.tenant === null ? r.node : r.node.slice(0, r.node.length - r.tenant.length - 1);
      // The stable code, as a diagnostic carries it: text output had none (only the JSON log did).
      const message = `${r.code ? `error ${r.code}: ` : ''}${r.message ?? ''}`;
      const seen = this.byKey.get(key);
      if (!seen) {
        this.byKey.set(key, { tenants: r.tenant === null ? [] : [r.tenant], message, differs: false });
        now.push(`${key}${r.tenant === null ? '' : ` failed for ${r.tenant}`}: ${message}`);
        continue;
      }
      if (r.tenant !== null) seen.tenants.push(r.tenant);
      if (message !== seen.message) seen.differs = true;
    }
    return now;
  }

  /** One line per failed model or test: how many practices, which (the first `shown`), the first message. */
  summary(shown = 10): string[] {
    return [...this.byKey].map(([key, f]) => {
      const n = f.tenants.length;
      const who = n === 0 ? 'failed' : `failed for ${n} practice${n === 1 ? '' : 's'} (${f.tenants.slice(0, shown).join(', ')}${n > shown ? ', …' : ''})`;
      return `${key} ${who}: ${f.message}${f.differs ? ' (messages differ per practice: target/run_results.json)' : ''}`;
    });
  }
}
