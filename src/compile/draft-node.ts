import type { ManifestNode, ModelNode } from '../artifacts/manifest.ts';

/** A model before rendering: everything but its SQL. */
export type ModelDraft = Omit<ModelNode, 'compiled_sql'> & { compiled_sql?: string };

/** Any node while compiling: rendering reads upstream nodes before their SQL is known. */
export type DraftNode = Exclude<ManifestNode, ModelNode> | ModelDraft;
