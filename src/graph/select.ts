import { suggest } from '../project/suggest.ts';
import { Codes, TsformError } from '../errors.ts';
import { showValue } from '../project/load-tenants.ts';
import { TENANT_ID_PATTERN, type Tenant } from '../project/types.ts';
import type { ManifestNode } from '../artifacts/manifest.ts';
import { downstreamOf, upstreamOf, type ModelDag } from './dag.ts';

/**
 * dbt's selector grammar: space = union, comma = intersection; an atom is
 * `[@][n+]method:value[+n]` with methods name (default), tag, path, source, kind (alias
 * resource_type), config.<key>, state. `+` walks the whole upstream (before) or downstream
 * (after); `2+x` and `x+1` stop after that many edges; `@x` is x, its downstream, and every
 * upstream of those (what a downstream rebuild reads).
 */
export interface SelectorAtom {
  method: 'name' | 'tag' | 'path' | 'source' | 'kind' | 'config' | 'state';
  /** `config.<key>:` only: the config key compared (materialized, scope, schema, unique_key, tags, pseudonymized). */
  key?: string;
  value: string;
  upstream: boolean;
  downstream: boolean;
  /** Edges to walk upstream / downstream; undefined = all (`+x`, `x+`). */
  upstreamDepth?: number;
  downstreamDepth?: number;
  /** `@x`: x, its downstream, and the upstream of all of them. */
  parentsOfChildren?: boolean;
}

export type SelectorSpec = SelectorAtom[][];

const METHODS = new Set(['name', 'tag', 'path', 'source', 'kind', 'resource_type', 'config', 'state']);
/** What `config.<key>:` can compare: the node's config as the manifest records it. */
const CONFIG_KEYS = ['materialized', 'scope', 'schema', 'unique_key', 'tags', 'pseudonymized'] as const;
type ConfigKey = (typeof CONFIG_KEYS)[number];

/** What some selector methods need besides the DAG: `state:modified` needs the nodes changed since --state. */
export interface SelectorContext {
  modified?: ReadonlySet<string>;
}

/** `[@][n+]body[+n]`: the graph operators around a `method:value` body. */
const ATOM = /^(@)?(?:(\d*)\+)?(.*?)(?:\+(\d*))?$/;

/** `state:captured` in a selection: the run also narrows its practices to those captured since their last model run. */
export function selectsCaptured(select: readonly string[] | undefined): boolean {
  return (select ?? []).some((s) => /(^|[\s,+@])state:captured\b/.test(s));
}

export function parseSelector(text: string): SelectorSpec {
  return text
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((term) => {
      const atoms = term.split(',');
      // `a, b` (a dbt habit from lists) is the terms `a,` and `b`: say which comma, not `cannot read ""`.
      if (atoms.length > 1 && atoms.some((a) => a === '')) {
        throw new TsformError(Codes.badSelector, `cannot read selector ${showValue(text.trim())}: a comma joins two selectors into their intersection with no space around it ('a,b'); a space separates a union ('a b')`);
      }
      return atoms.map(parseAtom);
    });
}

/** `--select ''` (an unset $CHANGED in CI) selected nothing and the run went green having built nothing. */
function parseGiven(option: string, texts: readonly string[]): SelectorSpec {
  const spec = parseSelector(texts.join(' '));
  if (spec.length === 0) throw new TsformError(Codes.badSelector, `${option} ${showValue(texts.join(' '))} names nothing; give a selector, or leave ${option} out for every node`);
  return spec;
}

function parseAtom(raw: string): SelectorAtom {
  const bad = (why: string) =>
    new TsformError(Codes.badSelector, `cannot read selector ${showValue(raw)}: ${why} (grammar: [@][n+]method:value[+n]; methods: name, tag, path, source, resource_type, config.<key>, state)`);
  const m = ATOM.exec(raw);
  if (!m) throw bad('not a selector');
  const [, at, up, body = '', down] = m;
  if (at && up !== undefined) throw bad("'@' already includes the upstream: use @x or +x, not both");
  const colon = body.indexOf(':');
  const rawMethod = colon === -1 ? 'name' : body.slice(0, colon);
  const value = colon === -1 ? body : body.slice(colon + 1);
  if (value === '') throw bad('nothing to match');
  if (/^\d+$/.test(body) && (up !== undefined || down !== undefined)) throw bad('a depth needs a node after (n+x) or before (x+n)');
  const [method, key] = rawMethod.startsWith('config.') ? ['config', rawMethod.slice('config.'.length)] : [rawMethod === 'resource_type' ? 'kind' : rawMethod, undefined];
  if (!METHODS.has(method)) throw bad(`unknown method '${rawMethod}'${suggest(rawMethod, [...METHODS, ...CONFIG_KEYS.map((k) => `config.${k}`)])}`);
  if (method === 'config' && !(CONFIG_KEYS as readonly string[]).includes(key ?? '')) {
    throw bad(`config.<key> compares one of ${CONFIG_KEYS.join(', ')}${suggest(key ?? '', CONFIG_KEYS)}`);
  }
  const depth = (d: string | undefined) => (d === undefined || d === '' ? undefined : Number.parseInt(d, 10));
  return {
    method: method as SelectorAtom['method'],
    ...(key !== undefined ? { key } : {}),
    value,
    upstream: up !== undefined,
    downstream: down !== undefined,
    ...(depth(up) !== undefined ? { upstreamDepth: depth(up) } : {}),
    ...(depth(down) !== undefined ? { downstreamDepth: depth(down) } : {}),
    ...(at ? { parentsOfChildren: true } : {}),
  };
}

/** Node ids selected by `select` minus `exclude`; no `select` means every node. */
export function selectNodes(dag: ModelDag, select: string[] | undefined, exclude: string[] | undefined, context: SelectorContext = {}): Set<string> {
  const all = new Set(dag.order);
  const selectSpec = select && select.length > 0 ? parseGiven('--select', select) : undefined;
  const chosen = selectSpec ? evaluate(dag, selectSpec, context) : all;
  if (exclude && exclude.length > 0) {
    const excludeSpec = parseGiven('--exclude', exclude);
    for (const id of evaluate(dag, excludeSpec, context)) chosen.delete(id);
    // `--exclude '*'`, `-s x --exclude x`: a green run of nothing, as `--select ''` was (red-team).
    const byState = [...(selectSpec ?? []), ...excludeSpec].some((term) => term.some((a) => a.method === 'state'));
    if (chosen.size === 0 && !byState) throw new TsformError(Codes.badSelector, `--exclude ${showValue(exclude.join(' '))} leaves nothing of ${selectSpec ? `--select ${showValue(select!.join(' '))}` : 'the project'} to run`);
  }
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
    // Each atom matched something (or it would have said so); their intersection may not. Nothing
    // modified is a valid answer in CI, so a term with a state atom may select nothing.
    if (term.length > 1 && acc?.size === 0 && !term.some((a) => a.method === 'state')) {
      throw new TsformError(Codes.badSelector, `selector ${showValue(term.map(atomText).join(','))} matches nothing: its parts match nodes, but no node matches all of them (a comma is an intersection; a space separates a union)`);
    }
    for (const id of acc ?? []) out.add(id);
  }
  return out;
}

function atomText(atom: SelectorAtom): string {
  return `${atom.method === 'name' ? '' : `${atom.method === 'config' ? `config.${atom.key}` : atom.method === 'kind' ? 'resource_type' : atom.method}:`}${atom.value}`;
}

function evaluateAtom(dag: ModelDag, atom: SelectorAtom, context: SelectorContext): Set<string> {
  const base = atom.method === 'state' ? stateMatches(dag, atom, context) : attributeMatches(dag, atom);
  const out = new Set(base);
  if (atom.parentsOfChildren) {
    for (const id of downstreamOf(dag.graph, base)) out.add(id);
    for (const id of upstreamOf(dag.graph, [...out])) out.add(id);
    return out;
  }
  if (atom.upstream) for (const id of upstreamOf(dag.graph, base, atom.upstreamDepth)) out.add(id);
  if (atom.downstream) for (const id of downstreamOf(dag.graph, base, atom.downstreamDepth)) out.add(id);
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
  // Manifest paths use '/': `path:models\marts` typed on Windows means the same folder.
  const value = atom.method === 'path' ? atom.value.replaceAll('\\', '/') : atom.value;
  const glob = globToRegExp(value);
  dag.graph.forEachNode((id, { node }) => {
    const match =
      atom.method === 'name'
        ? glob.test(id) || glob.test(node.name.replace(/^source:/, ''))
        : atom.method === 'tag'
          ? node.tags.some((t) => glob.test(t))
          : atom.method === 'path'
            ? node.path === value || node.path.startsWith(value.replace(/\/?$/, '/')) || glob.test(node.path)
            : atom.method === 'source'
              ? node.kind === 'source' && (glob.test(id.replace(/^source:/, '')) || glob.test(sourceNameOf(id)))
              : atom.method === 'config'
                ? configValues(node, atom.key as ConfigKey).some((v) => glob.test(v))
                : glob.test(node.kind);
    if (match) base.add(id);
  });
  if (base.size === 0) {
    // Tests are not nodes of the graph: they run with the node they test.
    const tests = atom.method === 'kind' && atom.value === 'test' ? ': tests are not selected on their own; they run with the node they test (tsform test --select <node>; tsform ls --resource-type test lists them)' : '';
    throw new TsformError(Codes.badSelector, `selector '${atomText(atom)}' matches nothing${tests || suggest(atom.value, selectorValues(dag, atom))}`);
  }
  return base;
}

/** `source:ehr.encounters` → `ehr`: `source:ehr` selects every table of the source, as in dbt. */
function sourceNameOf(id: string): string {
  return id.replace(/^source:/, '').split('.')[0]!;
}

/** A node's config value(s) as text: lists match on any element, booleans as `true` / `false`. */
function configValues(node: ManifestNode, key: ConfigKey): string[] {
  const v = node[key];
  return Array.isArray(v) ? v : [String(v)];
}

/** What a method could have matched, for "did you mean". */
function selectorValues(dag: ModelDag, atom: SelectorAtom): string[] {
  const method = atom.method;
  const values = new Set<string>();
  dag.graph.forEachNode((id, { node }) => {
    if (method === 'config') for (const v of configValues(node, atom.key as ConfigKey)) values.add(v);
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
  // `--tenant ""` (an unset $PRACTICE) or `--tenant ,` named nobody and ran nothing, with exit 0.
  if (chosen.size === 0) throw new TsformError(Codes.badTenantArgument, `--tenant ${showValue(args.join(','))} names no practice; give practice ids or tag:<tag>, or leave --tenant out for every practice`);
  return tenants.filter((t) => chosen.has(t.id));
}
