import { writeManifest } from '../artifacts/write.ts';
import { compileProject, type CompileOptions } from '../compile/compile.ts';
import { withVarOverrides } from '../compile/template-references.ts';
import { Codes, diagnostic, DiagnosticsError, hasErrors } from '../errors.ts';
import { buildDag } from '../graph/dag.ts';
import { loadProject } from '../project/load-project.ts';
import type { Project } from '../project/types.ts';
import { checkDeclaredClasses } from '../security/declared-classes.ts';
import { checkPseudonymizedLineage } from '../security/phi-gate.ts';
import { resolveProtectedRelations } from '../security/protected-relations.ts';
import { policyRoleDiagnostics, policyTemplateDiagnostics } from '../security/render-rls.ts';
import { readAlertConfig } from '../sla/index.ts';
import { artifactDir } from './target-path.ts';
import type { Workspace } from './workspace.ts';

/**
 * Project → Workspace: compile, then every gate that must pass before anything runs, in order
 * (the DAG has no cycle, protected relations resolve, the PHI lineage of research models holds,
 * the alert config reads). Each stage is pure and lives in its own layer (compile/, graph/,
 * security/, sla/); compile/ cannot see graph/ or security/, so they are sequenced here.
 * Throws DiagnosticsError with every user error of the first failing gate.
 */
/** `write: false` leaves target/ alone; `targetPath` is `--target-path` (target-path.ts). */
export interface WorkspaceOptions extends CompileOptions {
  write?: boolean;
  targetPath?: string;
}

export function compileLoadedProject(loaded: Project, opts: WorkspaceOptions = {}): Workspace {
  const project = withVarOverrides(loaded, opts.vars);
  // compileProject applies --vars itself: it refuses a name neither tsform.yml nor a template knows.
  const { manifest, diagnostics, readLines } = compileProject(loaded, opts);
  if (hasErrors(diagnostics)) throw new DiagnosticsError(diagnostics);
  const built = buildDag(manifest, (model, dep) => readLines[model]?.[dep]);
  if (!built.dag) throw new DiagnosticsError([...diagnostics, ...built.diagnostics]);
  const protection = project.policies ? resolveProtectedRelations(manifest, project.policies) : { relations: [], diagnostics: [] };
  if (project.policies) {
    protection.diagnostics.push(...policyRoleDiagnostics(project.policies, project.tenants));
    protection.diagnostics.push(...policyTemplateDiagnostics(project.policies, project.config.tenantColumn, project.config.schemas, protection.relations));
  }
  if (hasErrors(protection.diagnostics)) throw new DiagnosticsError([...diagnostics, ...protection.diagnostics]);
  const declared = checkDeclaredClasses(project);
  if (hasErrors(declared)) throw new DiagnosticsError([...diagnostics, ...declared]);
  const lineage = checkPseudonymizedLineage(manifest, built.dag.order);
  if (hasErrors(lineage)) throw new DiagnosticsError([...diagnostics, ...lineage]);
  const alertConfig = readAlertConfig(project.config.alerts?.raw);
  if (alertConfig.errors.length > 0) {
    throw new DiagnosticsError(alertConfig.errors.map((m) => diagnostic(Codes.yamlShape, m, { file: 'tsform.yml', line: project.config.alerts?.line })));
  }
  const targetDir = artifactDir(project.root, opts.targetPath);
  if (opts.write !== false) writeManifest(targetDir, manifest);
  return { project, manifest, dag: built.dag, diagnostics: [...diagnostics, ...protection.diagnostics, ...declared, ...lineage], targetDir, protectedRelations: protection.relations, alertSinks: alertConfig.sinks };
}

/** Reads and compiles a project (compileLoadedProject over loadProject). */
export function compileWorkspace(projectDir: string, opts: WorkspaceOptions = {}): Workspace {
  return compileLoadedProject(loadProject(projectDir), opts);
}
