import { suggest } from '../project/suggest.ts';
import { Codes, TsformError } from '../errors.ts';
import { showValue } from '../project/load-tenants.ts';
import { TENANT_ID_PATTERN, type Tenant } from '../project/types.ts';
import { downstreamOf, upstreamOf, type ModelDag } from './dag.ts';

/**
 * dbt's selector grammar: space = union, comma = intersection; an atom is
 * `[+]method:value[+]` with methods name (default), tag, path, source, kind.
 */
export interface SelectorAtom {
  method: 'name' | 'tag' | 'path' | 'source' | 'kind' | 'state';
  value: string;
  upstream: boolean;
  downstream: boolean;
}

export type SelectorSpec = SelectorAtom[][];

const METHODS = new Set(['name', 'tag', 'path', 'source', 'kind', 'state']);

/** What some selector methods need besides the DAG: `state:modified` needs the nodes changed since --state. */
export interface SelectorContext {
  modified?: ReadonlySet<string>;
}

/** `state:captured` in a selection: the run also narrows its practices to those captured since their last model run. */
export function selectsCaptured(select: readonly string[] | undefined): boolean {
  return (select ?? []).some((s) => /(^|[\s,+])state:captured\b/.test(s));
}

export function parseSelector(text: string): SelectorSpec {
  return text
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((term) =>
      term.split(',').map((raw) => {
        let atom = raw;
        const upstream = atom.startsWith('+');
        if (upstream) atom = atom.slice(1);
        const downstream = atom.endsWith('+');
        if (downstream) atom = atom.slice(0, -1);
        const colon = atom.indexOf(':');
        const method = colon === -1 ? 'name' : atom.slice(0, colon);
        const value = colon === -1 ? atom : atom.slice(colon + 1);
        if (!METHODS.has(method) || value === '') {
          throw new TsformError(Codes.badSelector, `cannot read selector ${showValue(raw)} (methods: ${[...METHODS].join(', ')})`);
        }
        return { method: method as SelectorAtom['method'], value, upstream, downstream };
      }),
    );
}

/** Node ids selected by `select` minus `exclude`; no `select` means every node. */
export function selectNodes(dag: ModelDag, select: string[] | undefined, exclude: string[] | undefined, context: SelectorContext = {}): Set<string> {
  const all = new Set(dag.order);
  const chosen = select && select.length > 0 ? evaluate(dag, parseSelector(select.join(' ')), context) : all;
  if (exclude && exclude.length > 0) for (const id of evaluate(dag, parseSelector(exclude.join(' ')), context)) chosen.delete(id);
  return chosen;
}

function evaluate(dag: ModelDag, spec: SelectorSpec, context: SelectorContext): Set<string> {
  const out = new Set<string>();
  for (const term of spec) {
    let acc: Set<string> | undefined;
    for (const atom of term) {
      const hit = evaluateAtom(dag, atom, context);
      acc = acc ? new Set([...acc].filter((x) => hit.has(x))) : hit;
    }
    for (const id of acc ?? []) out.add(id);
  }
  return out;
}

function evaluateAtom(dag: ModelDag, atom: SelectorAtom, context: SelectorContext): Set<string> {
  const base = atom.method === 'state' ? stateMatches(dag, atom, context) : attributeMatches(dag, atom);
  const out = new Set(base);
  if (atom.upstream) for (const id of upstreamOf(dag.graph, base)) out.add(id);
  if (atom.downstream) for (const id of downstreamOf(dag.graph, base)) out.add(id);
  return out;
}

/** Nothing modified is a valid answer in CI: it selects nothing rather than failing. */
function stateMatches(dag: ModelDag, atom: SelectorAtom, context: SelectorContext): Set<string> {
  if (atom.value === 'captured') {
    // The sources log-based capture loads; which practices changed is the run's tenant filter (selectsCaptured).
    const out = new Set<string>();
    dag.graph.forEachNode((id, { node }) => {
      if (node.kind === 'source' && node.capture?.kind === 'postgres' && node.capture.mode === 'logical') out.add(id);
    });
    return out;
  }
  if (atom.value !== 'modified') throw new TsformError(Codes.badSelector, `unknown state selector 'state:${atom.value}' (state:modified, state:captured)`);
  if (!context.modified) throw new TsformError(Codes.badSelector, 'state:modified needs --state <dir> holding a previous manifest.json');
  return new Set([...context.modified].filter((id) => dag.graph.hasNode(id)));
}

function attributeMatches(dag: ModelDag, atom: SelectorAtom): Set<string> {
  const base = new Set<string>();
  const glob = globToRegExp(atom.value);
  dag.graph.forEachNode((id, { node }) => {
    const match =
      atom.method === 'name'
        ? glob.test(id) || glob.test(node.name.replace(/^source:/, ''))
        : atom.method === 'tag'
          ? node.tags.some((t) => glob.test(t))
          : atom.method === 'path'
            ? node.path === atom.value || node.path.startsWith(atom.value.replace(/\/?$/, '/')) || glob.test(node.path)
            : atom.method === 'source'
              ? node.kind === 'source' && (glob.test(id.replace(/^source:/, '')) || glob.test(sourceNameOf(id)))
              : glob.test(node.kind);
    if (match) base.add(id);
  });
  if (base.size === 0) {
    throw new TsformError(Codes.badSelector, `selector '${atom.method}:${atom.value}' matches nothing${suggest(atom.value, selectorValues(dag, atom.method))}`);
  }
  return base;
}

/** `source:ehr.encounters` → `ehr`: `source:ehr` selects every table of the source, as in dbt. */
function sourceNameOf(id: string): string {
  return id.replace(/^source:/, '').split('.')[0]!;
}

/** What a method could have matched, for "did you mean". */
function selectorValues(dag: ModelDag, method: SelectorAtom['method']): string[] {
  const values = new Set<string>();
  dag.graph.forEachNode((id, { node }) => {
    if (method === 'name') values.add(node.name.replace(/^source:/, ''));
    else if (method === 'tag') for (const t of node.tags) values.add(t);
    else if (method === 'path') values.add(node.path);
    else if (method === 'source' && node.kind === 'source') {
      values.add(sourceNameOf(id));
      values.add(id.replace(/^source:/, ''));
    } else if (method === 'kind') values.add(node.kind);
  });
  return [...values].sort();
}

/**
 * A selection of ephemeral models only builds nothing: an ephemeral model is inlined as a CTE into
 * the models that read it. Said so, with what to select instead, rather than "0 nodes" and exit 0.
 */
export function refuseEphemeralOnly(dag: ModelDag, selected: ReadonlySet<string>): void {
  if (selected.size === 0) return;
  const ephemeral = [...selected].filter((id) => dag.graph.getNodeAttribute(id, 'node').materialized === 'ephemeral');
  if (ephemeral.length < selected.size) return;
  const readers = [...new Set(ephemeral.flatMap((id) => dag.graph.outNeighbors(id)))].filter((id) => !selected.has(id)).sort();
  const names = ephemeral.map((id) => `'${id}'`).join(', ');
  throw new TsformError(
    Codes.badSelector,
    `${names} ${ephemeral.length === 1 ? 'is' : 'are'} ephemeral: inlined as a CTE into the models that read ${ephemeral.length === 1 ? 'it' : 'them'}, so there is nothing to build; ` +
      `select ${readers.length > 0 ? `the readers (${readers.map((r) => `'${r}'`).join(', ')}), e.g. --select ${ephemeral[0]}+` : `the models that read ${ephemeral.length === 1 ? 'it' : 'them'} (--select ${ephemeral[0]}+)`}`,
  );
}

function globToRegExp(value: string): RegExp {
  const escaped = value.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.');
  return new RegExp(`^${escaped}$`);
}

/** `--tenant a,b` or `--tenant tag:large`; ids are checked against the pattern before any lookup. */
export function selectTenants(tenants: readonly Tenant[], args: string[] | undefined): Tenant[] {
  if (!args || args.length === 0) return [...tenants];
  const byId = new Map(tenants.map((t) => [t.id, t]));
  const chosen = new Map<string, Tenant>();
  for (const arg of args.flatMap((a) => a.split(','))) {
    const item = arg.trim();
    if (item === '') continue;
    if (item.startsWith('tag:')) {
      const tag = item.slice(4);
      const hits = tenants.filter((t) => t.tags.includes(tag));
      if (hits.length === 0) throw new TsformError(Codes.unknownTenant, `no practice has tag ${showValue(tag)}`);
      for (const t of hits) chosen.set(t.id, t);
      continue;
    }
    if (!TENANT_ID_PATTERN.test(item)) {
      throw new TsformError(Codes.badTenantArgument, `--tenant ${showValue(item)} is not a valid practice id (${TENANT_ID_PATTERN.source})`);
    }
    const t = byId.get(item);
    if (!t) throw new TsformError(Codes.unknownTenant, `practice '${item}' is not in tenants.yml`);
    chosen.set(t.id, t);
  }
  return tenants.filter((t) => chosen.has(t.id));
}
