import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { Adapter } from '../adapters/adapter.ts';
import { safeDbMessage } from '../adapters/safe-message.ts';
import { DiagnosticsError, formatDiagnostic, TsformError } from '../errors.ts';
import { storedVaultFingerprint } from '../execute/vault.ts';
import { loadProject } from '../project/load-project.ts';
import type { Project, TargetConfig } from '../project/types.ts';
import { compileLoadedProject } from './compile-stage.ts';
import type { Env } from './env.ts';
import { TSFORM_PACKAGE_ROOT, tsformVersion } from './package-root.ts';
import { openAdapter, resolveTarget, unbuiltWarehouse } from './target.ts';
import { artifactDir } from './target-path.ts';

/** One line of `tsform debug`: what was checked, and either what was found or why it failed. */
export interface DebugCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DebugRequest {
  projectDir: string;
  target?: string;
  targetPath?: string;
  env: Env;
}

/**
 * dbt's `debug`: versions, then each check in order (project files, artifacts folder, target
 * connection, vault), each with what it found or a message saying how to fix it. A check that
 * needs an earlier one (the connection needs tsform.yml) reports why it did not run. Never
 * creates anything: a DuckDB warehouse that does not exist yet is a finding, not created here.
 */
export async function debugChecks(req: DebugRequest): Promise<{ versions: string; checks: DebugCheck[] }> {
  const checks: DebugCheck[] = [];
  const fail = (name: string, e: unknown) => checks.push({ name, ok: false, detail: describe(e) });
  let project: Project | undefined;
  try {
    project = loadProject(req.projectDir);
    const ws = compileLoadedProject(project, { write: false, targetPath: req.targetPath });
    const m = ws.manifest;
    checks.push({
      name: 'project',
      ok: true,
      detail: `${project.root}: ${Object.keys(m.models).length} models, ${Object.keys(m.seeds).length} seeds, ${Object.keys(m.sources).length} sources, ${Object.keys(m.tests).length} tests, ${project.tenants.length} practices`,
    });
  } catch (e) {
    fail('project', e);
  }
  if (project) {
    try {
      checks.push({ name: 'artifacts', ok: true, detail: artifactDir(project.root, req.targetPath) });
    } catch (e) {
      fail('artifacts', e);
    }
  }
  let engine = '';
  if (!project) {
    checks.push({ name: 'target', ok: false, detail: 'not checked: tsform.yml could not be read (see project)' });
    return { versions: versions(engine), checks };
  }
  let target: TargetConfig;
  try {
    target = resolveTarget(project, req.target);
  } catch (e) {
    fail('target', e);
    return { versions: versions(engine), checks };
  }
  if (target.type === 'duckdb' && unbuiltWarehouse(project, target)) {
    checks.push({ name: 'target', ok: true, detail: `${target.name} (duckdb): ${target.path} does not exist yet; the first run creates it` });
    if (project.config.privacy) checks.push({ name: 'vault', ok: true, detail: 'no key yet: the first run on DuckDB creates it (or `tsform vault init`)' });
    return { versions: versions(engine), checks };
  }
  let adapter: Adapter | undefined;
  let stage = 'target';
  try {
    adapter = await openAdapter(project, target, { threads: 1, lockWaitMs: 2_000, env: req.env });
    const { rows } = await adapter.query('SELECT version() AS v');
    const answered = String(rows[0]?.v ?? '').split(' on ')[0]!;
    engine = target.type === 'duckdb' ? `DuckDB ${answered}` : answered;
    // On PostgreSQL, where a model's bare function names resolve (session-options.ts; the listed schemas were checked on open).
    const searched = target.type === 'postgres' ? `; functions by name from ${['pg_catalog', ...target.searchPath].join(', ')}` : '';
    checks.push({ name: 'target', ok: true, detail: `${target.name} (${target.type}${target.type === 'duckdb' ? `: ${target.path}` : `: $${target.urlEnv}`}): connected${searched}` });
    stage = 'vault';
    const privacy = project.config.privacy;
    if (!privacy) checks.push({ name: 'vault', ok: true, detail: 'not configured (tsform.yml has no privacy: block)' });
    else {
      const fingerprint = await storedVaultFingerprint(adapter, project.config.schemas.vault);
      const fromEnv = req.env[privacy.keyEnv] ? `; $${privacy.keyEnv} is set (checked against it on the next run)` : '';
      if (fingerprint) checks.push({ name: 'vault', ok: true, detail: `key ${fingerprint}${fromEnv}` });
      else if (adapter.kind === 'duckdb' || fromEnv) checks.push({ name: 'vault', ok: true, detail: `no key yet: ${fromEnv ? `the next run records $${privacy.keyEnv}'s fingerprint` : 'the first run on DuckDB creates it (or `tsform vault init`)'}` });
      else checks.push({ name: 'vault', ok: false, detail: `the vault has no key: a vault steward runs \`tsform vault init --target ${target.name}\` (or sets $${privacy.keyEnv}); every run stops until then` });
    }
  } catch (e) {
    fail(stage, e);
  } finally {
    await adapter?.close();
  }
  return { versions: versions(engine), checks };
}

function describe(e: unknown): string {
  if (e instanceof DiagnosticsError) {
    const errors = e.diagnostics.filter((d) => d.severity === 'error');
    return `${errors.length} error(s): ${errors.slice(0, 5).map(formatDiagnostic).join('; ')}${errors.length > 5 ? '; …' : ''}`;
  }
  if (e instanceof TsformError) return formatDiagnostic(e.toDiagnostic());
  return safeDbMessage(e);
}

/** tsform, Node, the drivers, and the engine that answered (when one did). */
function versions(engine: string): string {
  const req = createRequire(resolve(TSFORM_PACKAGE_ROOT, 'package.json'));
  const pkg = (name: string) => {
    try {
      return (req(`${name}/package.json`) as { version: string }).version;
    } catch {
      return 'not installed';
    }
  };
  return [`tsform ${tsformVersion()}`, `node ${process.versions.node}`, `@duckdb/node-api ${pkg('@duckdb/node-api')}`, `pg ${pkg('pg')}`, ...(engine ? [`engine ${engine}`] : [])].join(' · ');
}
