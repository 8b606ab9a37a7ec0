import type { SourceNode } from '../artifacts/manifest.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';
import { suggest } from '../project/suggest.ts';
import type { Project } from '../project/types.ts';
import type { TemplateUses } from './extract.ts';

/** A model's template uses with those of the macros it calls, transitively. */
export function withMacroUses(uses: TemplateUses, macroUses: Map<string, TemplateUses>): TemplateUses {
  const out: TemplateUses = { ...uses, refs: [...uses.refs], sources: [...uses.sources], vars: [...uses.vars], macros: [...uses.macros] };
  const seen = new Set<string>();
  const queue = [...uses.macros];
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const mu = macroUses.get(name);
    if (!mu) continue;
    out.refs.push(...mu.refs.map((r) => ({ ...r, line: uses.refs[0]?.line ?? 1 })));
    out.sources.push(...mu.sources);
    out.vars.push(...mu.vars);
    for (const m of mu.macros) {
      if (!out.macros.includes(m)) out.macros.push(m);
      queue.push(m);
    }
  }
  return out;
}

/** Unknown sources and vars without a default, at the line that names them. */
export function checkReferences(
  model: string,
  file: string,
  uses: TemplateUses,
  sources: Record<string, SourceNode>,
  project: Project,
  diagnostics: Diagnostic[],
): void {
  for (const s of uses.sources) {
    const id = `source:${s.source}.${s.table}`;
    if (!sources[id]) {
      const names = project.sources.map((x) => `${x.source}.${x.name}`);
      diagnostics.push(diagnostic(Codes.unknownSource, `${model}: unknown source '${s.source}.${s.table}'${suggest(`${s.source}.${s.table}`, names)}`, { file, line: s.line }));
    }
  }
  for (const v of uses.vars) {
    if (!Object.hasOwn(project.config.vars, v.name) && !v.hasDefault) {
      diagnostics.push(diagnostic(Codes.unknownVar, `${model}: var '${v.name}' is not in tsform.yml vars and has no default ({{var "${v.name}" <default>}})`, { file, line: v.line }));
    }
  }
}

/** The project with `--vars` over tsform.yml's vars (dbt's `--vars`). */
export function withVarOverrides(project: Project, overrides: Record<string, unknown> | undefined): Project {
  return overrides ? { ...project, config: { ...project.config, vars: { ...project.config.vars, ...overrides } } } : project;
}

/**
 * A `--vars` name that tsform.yml does not declare and no `{{var}}` reads changes nothing: `--vars
 * '{min_visit: 5}'` ran with min_visits at its tsform.yml value and said success (red-team,
 * 2026-12-08). Refused before anything runs, with the closest name.
 */
export function checkVarOverrides(declared: Record<string, unknown>, overrides: Record<string, unknown> | undefined, uses: readonly TemplateUses[], diagnostics: Diagnostic[]): void {
  if (!overrides) return;
  const known = [...new Set([...Object.keys(declared), ...uses.flatMap((u) => u.vars.map((v) => v.name))])];
  for (const name of Object.keys(overrides)) {
    if (known.includes(name)) continue;
    diagnostics.push(
      diagnostic(Codes.unknownVar, `--vars sets '${name}', which tsform.yml vars does not declare and no {{var}} of the project reads${suggest(name, known)}: it would change nothing`),
    );
  }
}
