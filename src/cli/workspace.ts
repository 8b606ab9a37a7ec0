import type { Manifest } from '../artifacts/manifest.ts';
import type { Diagnostic } from '../errors.ts';
import type { ModelDag } from '../graph/dag.ts';
import type { Project } from '../project/types.ts';
import type { ProtectedRelation } from '../security/protected-relations.ts';
import type { AlertSinkConfig } from '../sla/index.ts';

/**
 * A compiled project, as `compileWorkspace` (api.ts) returns it and the commands take it. A
 * module of its own so that the modules api.ts uses (capture-wiring.ts) can name it too.
 */
export interface Workspace {
  project: Project;
  manifest: Manifest;
  dag: ModelDag;
  /** Relations that get row-level security (empty without policies/policies.yml). */
  protectedRelations: ProtectedRelation[];
  /** Alert sinks of tsform.yml (`alerts:`); none configured means log only. */
  alertSinks: AlertSinkConfig[];
  diagnostics: Diagnostic[];
  targetDir: string;
}
