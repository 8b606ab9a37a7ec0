import { DirectedGraph } from 'graphology';
import { manifestNodes, type Manifest, type ManifestNode } from '../artifacts/manifest.ts';
import { Codes, diagnostic, type Diagnostic } from '../errors.ts';

/**
 * The model-level DAG: one graph node per relation (model, seed, source, tenants). The
 * practice fan-out is not materialized as graph nodes: with 500 models × 5,000 practices that
 * would be 2.5M objects; the plan describes it as (model, tenant set) instead.
 */
export interface ModelDag {
  graph: DirectedGraph<{ node: ManifestNode }>;
  /** Topological order, ties broken by name so plans are deterministic. */
  order: string[];
}

/**
 * `lineOfRead(model, dep)`: the line of the model's file where it reads `dep` (compile knows it),
 * so that a cycle is reported at the {{ref}} that closes it rather than at line 1.
 */
export function buildDag(manifest: Manifest, lineOfRead?: (model: string, dep: string) => number | undefined): { dag?: ModelDag; diagnostics: Diagnostic[] } {
  const graph = new DirectedGraph<{ node: ManifestNode }>();
  const nodes = manifestNodes(manifest);
  for (const [id, node] of Object.entries(nodes)) graph.addNode(id, { node });
  for (const [id, node] of Object.entries(nodes)) {
    for (const dep of node.depends_on) {
      if (graph.hasNode(dep) && !graph.hasEdge(dep, id)) graph.addDirectedEdge(dep, id);
    }
  }
  const cycle = findCycle(graph);
  if (cycle) {
    // Edges run from a relation to its readers: cycle[1] reads cycle[0].
    const reader = nodes[cycle[1] ?? cycle[0]!];
    const line = lineOfRead?.(cycle[1] ?? cycle[0]!, cycle[0]!) ?? 1;
    return {
      diagnostics: [diagnostic(Codes.cycle, `dependency cycle: ${cycle.join(' -> ')}`, { file: reader?.path, line })],
    };
  }
  return { dag: { graph, order: topologicalOrder(graph) }, diagnostics: [] };
}

/** Iterative DFS (no recursion limit with deep DAGs); returns the cycle as a closed path. */
function findCycle(graph: DirectedGraph): string[] | undefined {
  const state = new Map<string, 1 | 2>(); // 1 = on stack, 2 = done
  for (const start of [...graph.nodes()].sort()) {
    if (state.has(start)) continue;
    const stack: { id: string; next: string[] }[] = [{ id: start, next: graph.outNeighbors(start).sort() }];
    state.set(start, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const child = top.next.shift();
      if (child === undefined) {
        state.set(top.id, 2);
        stack.pop();
        continue;
      }
      const s = state.get(child);
      if (s === 1) {
        const from = stack.findIndex((f) => f.id === child);
        return [...stack.slice(from).map((f) => f.id), child];
      }
      if (s === undefined) {
        state.set(child, 1);
        stack.push({ id: child, next: graph.outNeighbors(child).sort() });
      }
    }
  }
  return undefined;
}

function topologicalOrder(graph: DirectedGraph): string[] {
  const indegree = new Map<string, number>();
  graph.forEachNode((id) => indegree.set(id, graph.inDegree(id)));
  const ready = [...indegree].filter(([, d]) => d === 0).map(([id]) => id).sort();
  const order: string[] = [];
  while (ready.length > 0) {
    const id = ready.shift()!;
    order.push(id);
    const released: string[] = [];
    graph.forEachOutNeighbor(id, (child) => {
      const d = indegree.get(child)! - 1;
      indegree.set(child, d);
      if (d === 0) released.push(child);
    });
    if (released.length > 0) {
      ready.push(...released);
      ready.sort();
    }
  }
  return order;
}

const compiledGraphs = new WeakMap<Manifest, ModelDag['graph']>();

/**
 * The graph of a manifest that compiled (so has no cycle), built once per manifest object: what
 * a run asks of it per node (what is upstream, what is below) costs a walk, not a rebuild.
 */
export function compiledGraph(manifest: Manifest): ModelDag['graph'] {
  const known = compiledGraphs.get(manifest);
  if (known) return known;
  const built = buildDag(manifest).dag;
  if (!built) throw new Error('compiledGraph: the manifest has a cycle, so it did not come from a compile');
  compiledGraphs.set(manifest, built.graph);
  return built.graph;
}

/** Nodes reachable upstream of `ids` (not `ids` themselves), within `depth` edges when given. */
export function upstreamOf(graph: DirectedGraph, ids: Iterable<string>, depth?: number): Set<string> {
  return walk(graph, ids, depth, (id, f) => graph.forEachInNeighbor(id, f));
}

/** Nodes reachable downstream of `ids` (not `ids` themselves), within `depth` edges when given. */
export function downstreamOf(graph: DirectedGraph, ids: Iterable<string>, depth?: number): Set<string> {
  return walk(graph, ids, depth, (id, f) => graph.forEachOutNeighbor(id, f));
}

/** Breadth-first, so that a node first reached by its shortest path gets the right depth. */
function walk(graph: DirectedGraph, ids: Iterable<string>, depth: number | undefined, neighbours: (id: string, f: (n: string) => void) => void): Set<string> {
  const seen = new Set<string>();
  let frontier = [...ids];
  for (let level = 0; frontier.length > 0 && (depth === undefined || level < depth); level++) {
    const next: string[] = [];
    for (const id of frontier) {
      if (!graph.hasNode(id)) continue;
      neighbours(id, (n) => {
        if (!seen.has(n)) {
          seen.add(n);
          next.push(n);
        }
      });
    }
    frontier = next;
  }
  return seen;
}
