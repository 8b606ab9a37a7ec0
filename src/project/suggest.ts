import { closest, distance } from 'fastest-levenshtein';

/**
 * " (did you mean 'x'?)" for a name that matched nothing, or '' when no candidate is close. In
 * project/ (the lowest layer that needs it) so that the yml loaders, compile and the selector
 * grammar share one notion of "close".
 */
export function suggest(name: string, candidates: readonly string[]): string {
  if (candidates.length === 0) return '';
  const near = candidates
    .map((c) => ({ c, d: distance(name, c) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(name.length / 3)))
    .sort((a, b) => a.d - b.d || a.c.localeCompare(b.c))
    .slice(0, 3)
    .map((x) => x.c);
  if (near.length === 0) {
    const c = closest(name, candidates as string[]);
    return c && distance(name, c) <= name.length / 2 ? ` (did you mean '${c}'?)` : '';
  }
  return ` (did you mean ${near.map((n) => `'${n}'`).join(', ')}?)`;
}
