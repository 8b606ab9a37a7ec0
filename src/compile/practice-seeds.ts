import type { Seed } from '../project/types.ts';

/**
 * A seed joined on the practice id below a published relation (a region per practice) tells
 * practices apart by its other columns, and a predicate on them picks the practices of one
 * combination: `join regions r on r.practice_id = e.practice_id where r.region <> 'x'`, beside the
 * same total over every practice, gives the cells of region x's practices by differencing, the
 * small ones the gate withholds included. A seed listing one practice (an inner join keeps it
 * alone) is the same with one combination, "listed". So every combination of the values of all
 * such seeds, "not listed" included, must hold at least k practices of tenants.yml, or none: any
 * predicate on them then keeps or drops whole classes of k practices or more.
 */

export interface PracticeClasses {
  /** Practices in combinations of fewer than k practices. */
  practices: number;
  /** The smallest such combination's size. */
  smallest: number;
  /** Up to three practice ids of the smallest combination (keys, to find the rows to change). */
  examples: string[];
}

/** Why `seeds` cannot be read for this check, or undefined. */
export function unreadablePracticeSeed(seeds: readonly Seed[]): Seed | undefined {
  return seeds.find((s) => s.header === undefined || s.rows === undefined);
}

/** The practices of tenants.yml that `seeds` (read by their `tenantColumn`) put in combinations of fewer than k, or undefined. */
export function smallPracticeClasses(seeds: readonly Seed[], tenantIds: readonly string[], tenantColumn: string, k: number): PracticeClasses | undefined {
  const perSeed = [...seeds].sort((a, b) => a.name.localeCompare(b.name)).map((seed) => valuesByPractice(seed, tenantColumn));
  const classes = new Map<string, string[]>();
  for (const id of tenantIds) {
    const key = JSON.stringify(perSeed.map((byPractice) => byPractice.get(id) ?? null));
    const members = classes.get(key) ?? [];
    members.push(id);
    classes.set(key, members);
  }
  const small = [...classes.values()].filter((ids) => ids.length < k).sort((a, b) => a.length - b.length);
  if (small.length === 0) return undefined;
  return { practices: small.reduce((n, ids) => n + ids.length, 0), smallest: small[0]!.length, examples: [...small[0]!].sort().slice(0, 3) };
}

/** Per practice id, its rows' other values (a practice listed twice: both rows), in one comparable string. */
function valuesByPractice(seed: Seed, tenantColumn: string): Map<string, string> {
  const header = seed.header ?? [];
  const at = header.findIndex((h) => h.toLowerCase() === tenantColumn.toLowerCase());
  const rows = new Map<string, string[]>();
  for (const row of seed.rows ?? []) {
    const id = row[at] ?? '';
    const values = rows.get(id) ?? [];
    values.push(JSON.stringify(row.filter((_, i) => i !== at)));
    rows.set(id, values);
  }
  return new Map([...rows].map(([id, values]) => [id, values.sort().join('\u0000')]));
}
