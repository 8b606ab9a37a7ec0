/**
 * Records → persons (issue 17). Pure and deterministic: the vault strategy and `npm run linkage`
 * call this one function, so the benchmark measures the code that assigns real tokens.
 *
 *  1. Candidates: records sharing a match key value are joined (union-find). A value held by more
 *     than `maxKeyHolders` records joins none (a placeholder identity, not a person).
 *  2. Guard: a candidate group in which two records disagree (birth dates beyond the tolerance,
 *     different sex, two different valid SSNs) is split again, greedily along its strongest
 *     links, into groups that agree pairwise. Such splits are counted, never described.
 *  3. Tokens stay: a group keeps the token most of its records already hold (ties: the smaller
 *     token), so a record joining a person never changes the person's token, and on a merge the
 *     larger side's token survives. A token claimed by two groups (a person split) stays with the
 *     larger. A group with no token gets `newToken(sorted record ids)`.
 *  Sparse records (no birth date, no name) are never candidates: each is a person of its own.
 */
import type { LinkRecord } from './match-keys.ts';

export interface ResolutionCounts {
  records: number;
  persons: number;
  /** Tokens retired because their person merged into a larger one. */
  merges: number;
  /** Candidate groups cut by the guard, plus tokens whose records now form several persons. */
  splits: number;
  /** Records too sparse to link, each its own person. */
  sparse: number;
  /** Persons that received a new token. */
  newPersons: number;
  /** Records that held a token and now hold another (new records are not counted). */
  retokenized: number;
  /** Key values ignored because too many records held them. */
  crowdedKeys: number;
}

export interface Resolution {
  /** Record id → person token. */
  tokens: Map<string, string>;
  counts: ResolutionCounts;
}

export interface ResolveOptions {
  maxKeyHolders: number;
  /** The token a record holds today, if any. */
  previous: ReadonlyMap<string, string>;
  /**
   * A fresh token for a new person, from its sorted record ids (unique per distinct list and
   * attempt). A later attempt is asked for when the token is taken: kept by another person here,
   * minted for one, or in `taken`.
   */
  newToken: (recordIds: readonly string[], attempt: number) => string;
  /**
   * Tokens held by records outside `records` (the vault re-resolves only what a change can
   * reach): a new person must not receive one, or two persons would share it.
   */
  taken?: ReadonlySet<string>;
  /**
   * The key values held by more than `maxKeyHolders` records among all records, when `records`
   * is only part of them (the vault re-resolves only what a change can reach): a value's holders
   * in the part do not say whether it is crowded. Without it, counted among `records`.
   */
  crowded?: ReadonlySet<string>;
}

class UnionFind {
  private readonly parent: Int32Array;
  constructor(n: number) {
    this.parent = Int32Array.from({ length: n }, (_, i) => i);
  }
  find(i: number): number {
    let root = i;
    while (this.parent[root] !== root) root = this.parent[root]!;
    while (this.parent[i] !== root) [i, this.parent[i]] = [this.parent[i]!, root];
    return root;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
}

/** Whether two records may be one person: nothing the guard compares disagrees. */
export function agree(a: LinkRecord, b: LinkRecord): boolean {
  if (a.sex !== '' && b.sex !== '' && a.sex !== b.sex) return false;
  if (a.ssn !== '' && b.ssn !== '' && a.ssn !== b.ssn) return false;
  if (a.dob.length === 0 || b.dob.length === 0 || a.dob[0] === b.dob[0]) return true;
  // masked variants are position-tagged: a shared one means the dates differ in that digit only
  for (let i = 1; i < a.dob.length; i++) if (a.dob[i] === b.dob[i]) return true;
  return false;
}

function sharedKeys(a: LinkRecord, b: LinkRecord): number {
  let n = 0;
  const other = new Set(b.keys);
  for (const k of a.keys) if (other.has(k)) n++;
  return n;
}

/** A candidate group → groups that agree pairwise, joined strongest link first. */
function splitByGuard(records: readonly LinkRecord[], members: readonly number[]): number[][] {
  const edges: [number, number, number][] = [];
  for (let i = 0; i < members.length; i++) {
    for (let j = i + 1; j < members.length; j++) {
      const shared = sharedKeys(records[members[i]!]!, records[members[j]!]!);
      if (shared > 0) edges.push([shared, i, j]);
    }
  }
  edges.sort((x, y) => y[0] - x[0] || x[1] - y[1] || x[2] - y[2]);
  const groupOf = members.map((_, i) => i);
  const groups = new Map<number, number[]>(members.map((_, i) => [i, [i]]));
  for (const [, i, j] of edges) {
    const gi = groupOf[i]!;
    const gj = groupOf[j]!;
    if (gi === gj) continue;
    const a = groups.get(gi)!;
    const b = groups.get(gj)!;
    if (!a.every((x) => b.every((y) => agree(records[members[x]!]!, records[members[y]!]!)))) continue;
    for (const y of b) groupOf[y] = gi;
    a.push(...b);
    groups.delete(gj);
  }
  return [...groups.values()].map((g) => g.map((i) => members[i]!));
}

function candidateGroups(records: readonly LinkRecord[], maxKeyHolders: number, crowded?: ReadonlySet<string>): { groups: number[][]; crowdedKeys: number } {
  const holders = new Map<string, number[]>();
  records.forEach((r, i) => {
    if (r.sparse) return;
    for (const k of r.keys) (holders.get(k) ?? holders.set(k, []).get(k)!).push(i);
  });
  const uf = new UnionFind(records.length);
  let crowdedKeys = 0;
  for (const [key, list] of holders) {
    if (crowded ? crowded.has(key) : list.length > maxKeyHolders) {
      crowdedKeys++;
      continue;
    }
    for (let i = 1; i < list.length; i++) uf.union(list[0]!, list[i]!);
  }
  const byRoot = new Map<number, number[]>();
  records.forEach((_, i) => {
    const root = uf.find(i);
    (byRoot.get(root) ?? byRoot.set(root, []).get(root)!).push(i);
  });
  return { groups: [...byRoot.values()], crowdedKeys };
}

export function resolvePersons(records: readonly LinkRecord[], opts: ResolveOptions): Resolution {
  const counts: ResolutionCounts = { records: records.length, persons: 0, merges: 0, splits: 0, sparse: 0, newPersons: 0, retokenized: 0, crowdedKeys: 0 };
  const { groups: candidates, crowdedKeys } = candidateGroups(records, opts.maxKeyHolders, opts.crowded);
  counts.crowdedKeys = crowdedKeys;
  const persons: number[][] = [];
  for (const group of candidates) {
    if (group.length === 1) {
      if (records[group[0]!]!.sparse) counts.sparse++;
      persons.push(group);
      continue;
    }
    const agreeing = group.every((a, i) => group.slice(i + 1).every((b) => agree(records[a]!, records[b]!)));
    if (agreeing) {
      persons.push(group);
      continue;
    }
    const parts = splitByGuard(records, group);
    counts.splits++;
    persons.push(...parts);
  }

  // Each person's preferred token: the one most of its records hold.
  const claims = persons.map((members, index) => {
    const held = new Map<string, number>();
    for (const m of members) {
      const t = opts.previous.get(records[m]!.id);
      if (t !== undefined) held.set(t, (held.get(t) ?? 0) + 1);
    }
    const ranked = [...held].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    counts.merges += Math.max(0, held.size - 1);
    return { index, members, token: ranked[0]?.[0], holders: ranked[0]?.[1] ?? 0 };
  });
  // A token two persons claim stays with the one holding it on more records.
  const winner = new Map<string, (typeof claims)[number]>();
  for (const c of claims) {
    if (c.token === undefined) continue;
    const w = winner.get(c.token);
    if (!w || c.holders > w.holders || (c.holders === w.holders && c.members.length > w.members.length)) winner.set(c.token, c);
  }
  const tokens = new Map<string, string>();
  // A new token must differ from every token a person keeps, was minted here, or is held outside.
  const unavailable = new Set<string>([...winner.keys(), ...(opts.taken ?? [])]);
  for (const c of claims) {
    let token = c.token;
    if (token !== undefined && winner.get(token) !== c) {
      counts.splits++;
      token = undefined;
    }
    if (token === undefined) {
      token = mintToken(opts, c.members.map((m) => records[m]!.id).sort(), unavailable);
      unavailable.add(token);
      counts.newPersons++;
    }
    for (const m of c.members) {
      const id = records[m]!.id;
      const before = opts.previous.get(id);
      if (before !== undefined && before !== token) counts.retokenized++;
      tokens.set(id, token);
    }
  }
  counts.persons = persons.length;
  return { tokens, counts };
}

function mintToken(opts: ResolveOptions, ids: readonly string[], unavailable: ReadonlySet<string>): string {
  for (let attempt = 0; attempt < 1_000; attempt++) {
    const token = opts.newToken(ids, attempt);
    if (!unavailable.has(token)) return token;
  }
  // Only a newToken that ignores its attempt gets here; a keyed hash does not repeat.
  throw new Error('resolvePersons: newToken gave a taken token 1,000 times');
}
