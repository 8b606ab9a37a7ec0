/**
 * The columns a query yields as the lineage walk (phi-lineage-analyze.ts) carries them: each with
 * its PHI lineage (Info), through CTE scopes, aliases and `AS x(a, b)` renames.
 */
import type { Node } from 'libpg-query';
import { combine, noneInfo, noteInfo, step, type Info } from './phi-lineage-info.ts';

/** A user-facing failure of the analysis (an unsupported construct): the result is ok:false. */
export class LineageError extends Error {}

export interface Column {
  name: string;
  info: Info;
}

/** The columns a relation or query yields, in order (names may repeat, as in `select *` over a join). */
export interface Shape {
  columns: Column[];
  /** Unknown relations whose columns cannot be listed (`select *` from them). */
  opaque: string[];
}

export interface CteEnv {
  shapes: Map<string, Shape>;
  parent: CteEnv | undefined;
}

/** The text of a `String` node of the typed tree (a name part). */
export const sval = (n: Node | undefined): string | undefined => (n && 'String' in n ? n.String.sval : undefined);

export function shapeInfo(shape: Shape): Info {
  return combine([noneInfo(), ...shape.columns.map((c) => c.info), ...(shape.opaque.length > 0 ? [noteInfo(shape.opaque.map((o) => `unknown relation ${o}`))] : [])]);
}

export function lookupCte(env: CteEnv | undefined, name: string): Shape | undefined {
  for (let e = env; e; e = e.parent) {
    const s = e.shapes.get(name);
    if (s) return s;
  }
  return undefined;
}

/** Columns of a query as seen from outside it, under `name`: `x.ssn`. */
export function labelled(shape: Shape, name: string): Shape {
  return { ...shape, columns: shape.columns.map((c) => ({ name: c.name, info: step(c.info, `${name}.${c.name}`) })) };
}

/** `AS x(a, b)` / `WITH x(a, b)`: renames the first columns in order. */
export function renamed(shape: Shape, colnames: Node[] | undefined): Shape {
  if (!colnames || colnames.length === 0) return shape;
  return {
    ...shape,
    columns: shape.columns.map((c, i) => {
      const n = sval(colnames[i]);
      return n === undefined ? c : { name: n, info: c.info };
    }),
  };
}
