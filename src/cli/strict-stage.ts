import { safeDbMessage } from '../adapters/safe-message.ts';
import { strictChecks } from '../compile/strict-checks.ts';
import { Codes, diagnostic, TsformError, type Diagnostic } from '../errors.ts';
import { deriveOutputColumns } from '../security/model-output-columns.ts';
import { strictColumnChecks } from '../security/strict-columns.ts';
import { openAdapter, resolveTarget, unbuiltWarehouse } from './target.ts';
import type { Workspace } from './workspace.ts';

/** A DESCRIBE fallback must not hang compile behind a run that holds the DuckDB file. */
const DESCRIBE_LOCK_WAIT_MS = 5_000;

/**
 * `tsform compile --strict`: the checks of compile/strict-checks.ts and security/strict-columns.ts.
 * Compile touches no database; only with `--target` does --strict read one, and then only
 * DESCRIBE of the models whose output columns the SQL parser could not derive (DuckDB-only
 * syntax, `select *` over a source), as they were last built there.
 */
export async function strictDiagnostics(ws: Workspace, opts: { target?: string } = {}): Promise<Diagnostic[]> {
  const found = strictChecks(ws.project, ws.manifest);
  if (opts.target === undefined) return [...found, ...strictColumnChecks(ws.project, ws.manifest)];
  const { unknown } = deriveOutputColumns(ws.project, ws.manifest);
  const wanted = Object.keys(unknown).filter((m) => ws.manifest.models[m]?.materialized !== 'ephemeral');
  if (wanted.length === 0) return [...found, ...strictColumnChecks(ws.project, ws.manifest)];
  const { described, notices, opened } = await describeModels(ws, opts.target, wanted);
  return [...found, ...notices, ...strictColumnChecks(ws.project, ws.manifest, opened ? { described, target: opts.target } : {})];
}

interface Described {
  described: Record<string, string[]>;
  notices: Diagnostic[];
  /** The target could be read (a model missing there is then "not built", not "not looked at"). */
  opened: boolean;
}

async function describeModels(ws: Workspace, targetName: string, models: string[]): Promise<Described> {
  const described: Record<string, string[]> = {};
  const notice = (message: string) => diagnostic(Codes.strictColumnsUnknown, message, { file: 'tsform.yml' }, 'warning');
  const target = resolveTarget(ws.project, targetName);
  const unbuilt = unbuiltWarehouse(ws.project, target);
  if (unbuilt) {
    return { described, opened: false, notices: [notice(`target '${target.name}' has no database yet (${unbuilt}): build the project there first to DESCRIBE ${models.join(', ')}`)] };
  }
  let adapter;
  try {
    adapter = await openAdapter(ws.project, target, { threads: 1, lockWaitMs: DESCRIBE_LOCK_WAIT_MS });
  } catch (err) {
    const why = err instanceof TsformError ? err.message : safeDbMessage(err, 1);
    return { described, opened: false, notices: [notice(`cannot open target '${target.name}' to DESCRIBE ${models.join(', ')}: ${why}`)] };
  }
  const notices: Diagnostic[] = [];
  try {
    for (const name of models) {
      const node = ws.manifest.models[name]!;
      const info = await adapter.describe(node.schema, node.identifier);
      // A model not built there keeps its "cannot derive" notice (strict-columns.ts).
      if (info) described[name] = info.columns.map((c) => c.name);
    }
  } finally {
    await adapter.close();
  }
  return { described, notices, opened: true };
}
